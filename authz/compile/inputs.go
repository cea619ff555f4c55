package compile

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"iter"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// Kind is the kind of an input object.
type Kind uint8

// Input kinds.
const (
	KindCredential Kind = iota + 1
	KindCustomAuthorizer
	KindAPIBinding
	KindSecret
)

func (k Kind) String() string {
	switch k {
	case KindCredential:
		return "Credential"
	case KindCustomAuthorizer:
		return "CustomAuthorizer"
	case KindAPIBinding:
		return "APIBinding"
	case KindSecret:
		return "Secret"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ObjectKey names one input object.
type ObjectKey struct {
	Kind Kind
	types.NamespacedName
}

func (k ObjectKey) String() string { return k.Kind.String() + " " + k.NamespacedName.String() }

// Inputs is the set of objects a snapshot is built from: the three Portcullis kinds and the
// labelled Secrets. It is owned by one source (informers or a directory), which calls Set and
// Delete as objects change and hands it to Build; it records which objects changed since the
// last build so that Build redoes only their part. Inputs is not safe for concurrent use: the
// owner serialises Set, Delete and Build.
type Inputs struct {
	// Now is the instant the build evaluates expiry against.
	Now time.Time

	credentials nsMap[*credInput]
	authorizers nsMap[*authv1alpha1.CustomAuthorizer]
	bindings    nsMap[*authv1alpha1.APIBinding]
	secrets     nsMap[*secretData]

	// The reverse indexes (see users.go): the Credentials naming each Secret, the
	// APIBindings naming each Credential.
	secretUsers, credUsers usersIndex

	changed map[ObjectKey]struct{}
	// Until the first build takes the changes, every object is new to it and it builds
	// everything: changes are only counted (in unbuilt), not recorded one by one.
	fresh   bool
	unbuilt int
}

// NewInputs returns an empty set.
func NewInputs() *Inputs {
	in := &Inputs{changed: map[ObjectKey]struct{}{}, fresh: true}
	in.secretUsers.held = func(k nn) *refs {
		if s := in.secrets.get(k); s != nil {
			return &s.creds
		}
		return nil
	}
	in.credUsers.held = func(k nn) *refs {
		if c := in.credentials.get(k); c != nil {
			return &c.bindings
		}
		return nil
	}
	return in
}

// KeyOf returns the key of a supported object; ok is false for any other type.
func KeyOf(obj client.Object) (key ObjectKey, ok bool) {
	nn := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	switch obj.(type) {
	case *authv1alpha1.Credential:
		return ObjectKey{KindCredential, nn}, true
	case *authv1alpha1.CustomAuthorizer:
		return ObjectKey{KindCustomAuthorizer, nn}, true
	case *authv1alpha1.APIBinding:
		return ObjectKey{KindAPIBinding, nn}, true
	case *corev1.Secret:
		return ObjectKey{KindSecret, nn}, true
	}
	return ObjectKey{}, false
}

// Set adds or replaces an object. The object is kept, not copied: the caller must not change
// it afterwards (objects from an informer cache are never changed); of a Credential or a
// Secret only what the compiler reads is kept (see credInput and secretData). A replacement
// with the same UID and resourceVersion is ignored. It reports whether the set changed.
func (in *Inputs) Set(obj client.Object) bool {
	p, ok := in.PrepareNew(obj) // an unchanged object is not converted
	return ok && in.SetPrepared(p)
}

// Prepared is an object in the form Inputs keeps it (see Set), made by Prepare. Preparing is
// the part of Set that reads the object, and may run on any goroutine: a source that decodes
// a whole directory prepares each object as it is decoded, and so never holds all the decoded
// objects at once (a Credential or a Secret is several times larger decoded than prepared).
type Prepared struct {
	key ObjectKey
	obj any // *credInput, *secretData, *CustomAuthorizer or *APIBinding; nil: unchanged
}

// Prepare returns obj in the form Set keeps it; ok is false for an unsupported type. The
// object is kept as Set keeps it: the caller must not change it afterwards.
func Prepare(obj client.Object) (p Prepared, ok bool) {
	key, ok := KeyOf(obj)
	if !ok {
		return Prepared{}, false
	}
	return prepare(key, versionOf(obj), obj), true
}

// prepare is Prepare for an object of a supported type, under key at version v.
func prepare(key ObjectKey, v version, obj client.Object) Prepared {
	p := Prepared{key: key}
	switch o := obj.(type) {
	case *authv1alpha1.Credential:
		p.obj = newCredInput(o, v)
	case *authv1alpha1.CustomAuthorizer:
		p.obj = o
	case *authv1alpha1.APIBinding:
		p.obj = o
	case *corev1.Secret:
		p.obj = newSecretData(o, v)
	}
	return p
}

// PrepareNew is Prepare for a source about to replace the whole set (see SetPrepared): of an
// object the set already holds at the same UID and resourceVersion, it keeps only the name,
// which SetPrepared ignores and a replacement keeps.
func (in *Inputs) PrepareNew(obj client.Object) (p Prepared, ok bool) {
	key, ok := KeyOf(obj)
	if !ok {
		return Prepared{}, false
	}
	v := versionOf(obj)
	if in.unchanged(key, v) {
		return Prepared{key: key}, true
	}
	return prepare(key, v, obj), true
}

// Key names the prepared object.
func (p Prepared) Key() ObjectKey { return p.key }

// ExpiresAt is a Credential's spec.expiresAt; ok is false for another kind, or a Credential
// that does not expire.
func (p Prepared) ExpiresAt() (t time.Time, ok bool) {
	if c, isCred := p.obj.(*credInput); isCred && c.expires {
		return c.expiresAt().time(), true
	}
	return time.Time{}, false
}

// SetPrepared adds or replaces a prepared object, as Set does the object it was prepared
// from; it reports whether the set changed. Of an object PrepareNew found unchanged, it
// changes nothing: the set must not have changed that object since.
func (in *Inputs) SetPrepared(p Prepared) bool {
	if p.obj == nil || in.unchanged(p.key, versionOfKept(p.obj)) {
		return false
	}
	in.put(p)
	return true
}

// unchanged reports whether the set holds the object under key at version v.
func (in *Inputs) unchanged(key ObjectKey, v version) bool {
	have, ok := in.version(key)
	return ok && have != 0 && have == v
}

func (in *Inputs) put(p Prepared) {
	nn := p.key.NamespacedName
	switch o := p.obj.(type) {
	case *credInput:
		in.putCredential(nn, in.credentials.get(nn), o)
		in.credentials.set(nn, o)
	case *authv1alpha1.CustomAuthorizer:
		in.authorizers.set(nn, o)
	case *authv1alpha1.APIBinding:
		_, old := bindingRefs(in.bindings.get(nn))
		_, now := bindingRefs(o)
		in.renameBinding(nn, old, now)
		in.bindings.set(nn, o)
	case *secretData:
		in.putSecret(nn, in.secrets.get(nn), o)
		in.secrets.set(nn, o)
	}
	in.Touch(p.key)
}

// Delete removes an object; it reports whether the set changed.
func (in *Inputs) Delete(key ObjectKey) bool {
	if _, ok := in.version(key); !ok {
		return false
	}
	nn := key.NamespacedName
	switch key.Kind {
	case KindCredential:
		in.deleteCredential(nn, in.credentials.get(nn))
		in.credentials.delete(nn)
	case KindCustomAuthorizer:
		in.authorizers.delete(nn)
	case KindAPIBinding:
		_, creds := bindingRefs(in.bindings.get(nn))
		in.renameBinding(nn, creds, nil)
		in.bindings.delete(nn)
	case KindSecret:
		in.deleteSecret(nn, in.secrets.get(nn))
		in.secrets.delete(nn)
	}
	in.Touch(key)
	return true
}

// Reserve makes room for the objects of keys in a set that has none of their kind and
// namespace yet: a first load of 100,000 objects then fills its maps without growing them
// step by step.
func (in *Inputs) Reserve(keys iter.Seq[ObjectKey]) {
	type kindNS struct {
		kind Kind
		ns   string
	}
	counts := map[kindNS]int{}
	for k := range keys {
		counts[kindNS{k.Kind, k.Namespace}]++
	}
	for k, n := range counts {
		switch k.kind {
		case KindCredential:
			in.credentials.reserve(k.ns, n)
		case KindCustomAuthorizer:
			in.authorizers.reserve(k.ns, n)
		case KindAPIBinding:
			in.bindings.reserve(k.ns, n)
		case KindSecret:
			in.secrets.reserve(k.ns, n)
		}
	}
}

// Touch marks an object as changed without changing it, so the next build evaluates it again
// (for instance when a Credential's expiresAt has passed).
func (in *Inputs) Touch(key ObjectKey) {
	if in.fresh {
		in.unbuilt++
		return
	}
	in.changed[key] = struct{}{}
}

// Changed counts the objects changed since the last build (before the first build, the
// changes: an object set twice counts twice).
func (in *Inputs) Changed() int { return len(in.changed) + in.unbuilt }

// Len counts the objects in the set.
func (in *Inputs) Len() int {
	return in.credentials.n + in.authorizers.n + in.bindings.n + in.secrets.n
}

// Keys returns the key of every object in the set (in no particular order).
func (in *Inputs) Keys() []ObjectKey {
	out := make([]ObjectKey, 0, in.Len())
	for _, kind := range []Kind{KindCredential, KindCustomAuthorizer, KindAPIBinding, KindSecret} {
		out = in.appendKeysOf(out, kind)
	}
	return out
}

// KeysOf returns the key of every object of one kind in the set (in no particular order).
func (in *Inputs) KeysOf(kind Kind) []ObjectKey { return in.appendKeysOf(nil, kind) }

func (in *Inputs) appendKeysOf(out []ObjectKey, kind Kind) []ObjectKey {
	switch kind {
	case KindCredential:
		return appendKeys(out, kind, in.credentials)
	case KindCustomAuthorizer:
		return appendKeys(out, kind, in.authorizers)
	case KindAPIBinding:
		return appendKeys(out, kind, in.bindings)
	case KindSecret:
		return appendKeys(out, kind, in.secrets)
	}
	return out
}

// Has reports whether the set holds the object under key.
func (in *Inputs) Has(key ObjectKey) bool {
	_, ok := in.version(key)
	return ok
}

// versionOfKept is the version of an object in the form the set keeps it.
func versionOfKept(obj any) version {
	switch o := obj.(type) {
	case *credInput:
		return o.version
	case *secretData:
		return o.version
	case metav1.Object:
		return versionOf(o)
	}
	return 0
}

// version returns the version of the object under key; ok is false when there is none.
func (in *Inputs) version(key ObjectKey) (v version, ok bool) {
	nn := key.NamespacedName
	var obj any
	switch key.Kind {
	case KindCredential:
		if c := in.credentials.get(nn); c != nil {
			obj = c
		}
	case KindCustomAuthorizer:
		if o := in.authorizers.get(nn); o != nil {
			obj = o
		}
	case KindAPIBinding:
		if o := in.bindings.get(nn); o != nil {
			obj = o
		}
	case KindSecret:
		if s := in.secrets.get(nn); s != nil {
			obj = s
		}
	}
	if obj == nil {
		return 0, false
	}
	return versionOfKept(obj), true
}

// version identifies one state of an object: its UID and resourceVersion, hashed to 64
// bits with a seed of the process's. Inputs keep it rather than the two strings, about 100
// bytes an object in file mode, where nothing else holds them. Two states of one object get
// one version once in 2^64 changes, and the change is then missed until the next (the file
// source's generation record takes the same bet); 128 bits cost 8 bytes more per Credential
// and per Secret. The zero version is that of every object without a resourceVersion, which
// Set never takes as unchanged.
type version uint64

var versionSeed = maphash.MakeSeed()

func versionOf(o metav1.Object) version {
	rv := o.GetResourceVersion()
	if rv == "" {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(versionSeed)
	h.WriteString(string(o.GetUID()))
	h.WriteByte(0) // a UID never holds a NUL: the boundary is unambiguous
	h.WriteString(rv)
	return version(h.Sum64())
}

// credInput is what the compiler reads of a Credential, and the names of the bindings
// naming it: 128 bytes. The object itself is not kept: as a Kubernetes type it costs 384
// bytes before its strings, and in file mode nothing else holds it. Strings, labels and maps
// are shared with the object, never copied. Its namespace and name are its key (and a
// compiled credential's Ref).
type credInput struct {
	uuid       [16]byte // the UID's bytes when it is a canonical UUID (see objectUID)
	version    version
	secretName string // spec.secretRef.name
	labels     map[string]string
	metadata   map[string]string // spec.metadata
	rare       *credRare         // nil for most
	generation int64
	// metadata.creationTimestamp and spec.expiresAt (when expires) as instants, their
	// halves apart so that the struct has no padding.
	createdSec, expiresSec   int64
	createdNsec, expiresNsec int32
	expires                  bool
	disabled                 bool
	// bindings names the APIBindings naming it (see users.go).
	bindings refs
}

func (c *credInput) created() instant   { return instant{c.createdSec, c.createdNsec} }
func (c *credInput) expiresAt() instant { return instant{c.expiresSec, c.expiresNsec} }

// newCredInput keeps what the compiler reads of o, whose version is v.
func newCredInput(o *authv1alpha1.Credential, v version) *credInput {
	id := uidOf(o.UID)
	c := &credInput{
		uuid:       id.uuid,
		version:    v,
		secretName: o.Spec.SecretRef.Name,
		labels:     o.Labels,
		metadata:   o.Spec.Metadata,
		generation: o.Generation,
		disabled:   o.Spec.Disabled,
	}
	created := instantOf(o.CreationTimestamp.Time)
	c.createdSec, c.createdNsec = created.sec, created.nsec
	if e := o.Spec.ExpiresAt; e != nil {
		at := instantOf(e.Time)
		c.expires, c.expiresSec, c.expiresNsec = true, at.sec, at.nsec
	}
	if raw := o.Spec.AllowedCIDRs; len(raw) > 0 || id.other != nil {
		c.rare = &credRare{uid: id.other}
		if len(raw) > 0 {
			c.rare.cidrs = parseCIDRs(raw)
		}
	}
	return c
}

// credRare is what few Credentials have, behind one pointer so that the input is 128 bytes
// (136 would take 144): a UID that is not a canonical UUID, and allowedCIDRs.
type credRare struct {
	uid   *types.UID // nil for a canonical UUID
	cidrs *cidrs     // nil when spec.allowedCIDRs is empty
}

// uid is the Credential's UID.
func (c *credInput) uid() objectUID {
	id := objectUID{uuid: c.uuid}
	if c.rare != nil {
		id.other = c.rare.uid
	}
	return id
}

// allowedCIDRs is spec.allowedCIDRs parsed; nil when it is empty.
func (c *credInput) allowedCIDRs() *cidrs {
	if c.rare == nil {
		return nil
	}
	return c.rare.cidrs
}

// cidrs is a Credential's spec.allowedCIDRs, parsed where its input is made so that the
// compiled Credential needs no pointer of its own to them.
type cidrs struct {
	prefixes []netip.Prefix // masked
	bad      string         // the first entry that is not a CIDR ("" when none): the credential is invalid
}

func parseCIDRs(raw []string) *cidrs {
	c := &cidrs{prefixes: make([]netip.Prefix, 0, len(raw))}
	for _, s := range raw {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return &cidrs{bad: s}
		}
		c.prefixes = append(c.prefixes, p.Masked())
	}
	return c
}

// badCIDR is the first entry of spec.allowedCIDRs that is not a CIDR, if any.
func (c *credInput) badCIDR() (string, bool) {
	cidrs := c.allowedCIDRs()
	if cidrs == nil || cidrs.bad == "" {
		return "", false
	}
	return cidrs.bad, true
}

// instant is a time.Time without its location (a pointer the collector would follow), exact
// for every time.Time.
type instant struct {
	sec  int64
	nsec int32
}

func instantOf(t time.Time) instant { return instant{t.Unix(), int32(t.Nanosecond())} }

func (i instant) time() time.Time { return time.Unix(i.sec, int64(i.nsec)) }

func (i instant) compare(j instant) int {
	return cmp.Or(cmp.Compare(i.sec, j.sec), cmp.Compare(i.nsec, j.nsec))
}

// secretData is what the compiler reads of a Secret. A Secret is kept this way rather than
// whole because there are as many Secrets as Credentials: a Go map per Secret (its data)
// costs several hundred bytes even for three keys, and a slice per value adds up too.
type secretData struct {
	version version
	// data holds every item as its key, uvarint(len(value)), value: one allocation per
	// Secret. A key is uvarint(len(key)) and the key, but for an empty key and the keys of
	// a credential Secret: a 0, then a 0 for the empty key (which the API server refuses),
	// or 1 + the key's index in taggedKeys. It is never written once made: a string, whose
	// header is 8 bytes shorter than a slice's, so that the record is 48 bytes (56 would take
	// 64). get hands out slices of it.
	data string
	// creds names the Credentials naming it (see users.go).
	creds refs
}

// taggedKeys are written as a tag in secretData: 20 of the 115 bytes of the load test's
// credential Secrets, which then fit a 96-byte allocation instead of 128.
var taggedKeys = [...]string{SecretKeyAppKey, SecretKeyAppSecret, SecretKeyAppCodes}

func tagOf(k string) int {
	for i, t := range taggedKeys {
		if k == t {
			return i
		}
	}
	return -1
}

// newSecretData keeps what the compiler reads of s, whose version is v.
func newSecretData(s *corev1.Secret, v version) *secretData {
	d := &secretData{version: v}
	n := secretDataLen(s.Data)
	if n == 0 {
		return d
	}
	b := make([]byte, 0, n)
	for k, v := range s.Data {
		if t := tagOf(k); k == "" || t >= 0 {
			b = append(b, 0, byte(t+1))
		} else {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
		}
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	d.data = unsafe.String(unsafe.SliceData(b), len(b)) // b is not written again
	return d
}

// secretDataLen is the length of the data newSecretData makes of data.
func secretDataLen(data map[string][]byte) int {
	n := 0
	for k, v := range data {
		if k == "" || tagOf(k) >= 0 {
			n += 2
		} else {
			n += uvarintLen(len(k)) + len(k)
		}
		n += uvarintLen(len(v)) + len(v)
	}
	return n
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// get returns the value under key k; its capacity ends with it, so appending to it copies.
// It is never written to.
func (d *secretData) get(k string) ([]byte, bool) {
	for rest := unsafe.Slice(unsafe.StringData(d.data), len(d.data)); len(rest) > 0; {
		var match bool
		if rest[0] == 0 { // a tag
			if t := rest[1]; t == 0 {
				match = k == ""
			} else {
				match = taggedKeys[t-1] == k
			}
			rest = rest[2:]
		} else {
			var key []byte
			key, rest = cutItem(rest)
			match = string(key) == k
		}
		value, r := cutItem(rest)
		if match {
			return value, true
		}
		rest = r
	}
	return nil, false
}

// cutItem splits a length-prefixed item off the front of b (written by newSecretData).
func cutItem(b []byte) (item, rest []byte) {
	l, n := binary.Uvarint(b)
	end := n + int(l)
	return b[n:end:end], b[end:]
}

// takeChanges returns the objects changed since the last build and starts recording anew;
// all is true when there was no build yet, so every object is new.
func (in *Inputs) takeChanges() (changed map[ObjectKey]struct{}, all bool) {
	c, all := in.changed, in.fresh
	in.changed, in.fresh, in.unbuilt = map[ObjectKey]struct{}{}, false, 0
	if all {
		in.indexUsers()
	}
	return c, all
}

// nsMap holds objects by namespace, then name. One map per namespace rather than one keyed
// by namespace and name: a key is a name (16 bytes), not two strings, and the builder reads
// a namespace's objects at once.
type nsMap[T comparable] struct {
	byNS map[string]map[string]T
	n    int // objects in all
}

// get returns the object named k, or the zero T.
func (m *nsMap[T]) get(k types.NamespacedName) T {
	return m.byNS[k.Namespace][k.Name]
}

// namespace returns the objects of ns by name; the caller must not change it.
func (m *nsMap[T]) namespace(ns string) map[string]T { return m.byNS[ns] }

func (m *nsMap[T]) set(k types.NamespacedName, v T) {
	if m.byNS == nil {
		m.byNS = map[string]map[string]T{}
	}
	names := m.byNS[k.Namespace]
	if names == nil {
		names = map[string]T{}
		m.byNS[k.Namespace] = names
	}
	if _, ok := names[k.Name]; !ok {
		m.n++
	}
	names[k.Name] = v
}

func (m *nsMap[T]) delete(k types.NamespacedName) {
	names := m.byNS[k.Namespace]
	if _, ok := names[k.Name]; !ok {
		return
	}
	m.n--
	delete(names, k.Name)
	if len(names) == 0 {
		delete(m.byNS, k.Namespace)
	}
}

// reserve makes room for n objects in ns, if it has none yet.
func (m *nsMap[T]) reserve(ns string, n int) {
	if len(m.byNS[ns]) > 0 {
		return
	}
	if m.byNS == nil {
		m.byNS = map[string]map[string]T{}
	}
	m.byNS[ns] = make(map[string]T, n)
}

// all calls f for every object, in no particular order.
func (m *nsMap[T]) all(f func(k types.NamespacedName, v T)) {
	for ns, names := range m.byNS {
		for name, v := range names {
			f(types.NamespacedName{Namespace: ns, Name: name}, v)
		}
	}
}

func appendKeys[T comparable](out []ObjectKey, kind Kind, m nsMap[T]) []ObjectKey {
	out = slices.Grow(out, m.n)
	m.all(func(k types.NamespacedName, _ T) { out = append(out, ObjectKey{kind, k}) })
	return out
}
