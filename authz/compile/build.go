package compile

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

type nn = types.NamespacedName

func hashNN(k nn) uint64                    { return hashString(k.Namespace) ^ hashString(k.Name)*31 }
func hashDigest(d [sha256.Size]byte) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// state is what a build leaves for the next one: every object's compiled form and status,
// and the reverse indexes that say which objects a change reaches.
type state struct {
	creds pmap[nn, *credEntry]
	authz pmap[nn, *authzEntry]
	binds pmap[nn, *bindEntry]

	// The reverse indexes hold names only: an object names objects of its own namespace.
	// Those of the Credentials (which name Secrets and are named by APIBindings), with an
	// entry per credential, are kept by the inputs (see users.go).
	secretAuthz pmap[nn, refs] // Secret -> CustomAuthorizers naming it
	authzUsers  pmap[nn, refs] // CustomAuthorizer -> APIBindings naming it

	// The claims on appKeys and AppCodes are in the snapshot's indexes (see claims).
}

// credEntry is the compiled form of one Credential: 48 bytes, as there may be 100,000. Its
// AppCodes' digests are not kept (32 bytes each and an allocation): a build reads them again
// from the Secret's data when it needs them (Credential.appendCodes).
type credEntry struct {
	obj  *credInput
	cred *Credential // nil when the Secret is missing or invalid
	// problem is the message of the Secret's problem when cred is nil (missing says which
	// problem); else why the credential lost its appKey or an AppCode, if it did.
	problem string
	ready   *[1]metav1.Condition // its status's one condition (see statusOf)
	bound   int32
	missing bool // the Secret is missing, not invalid
}

// conflict is why the credential lost its appKey or an AppCode ("" when it lost nothing).
func (e *credEntry) conflict() string {
	if e.cred == nil {
		return ""
	}
	return e.problem
}

// conds is the conditions of its status (nil before the build computes them).
func (e *credEntry) conds() []metav1.Condition {
	if e.ready == nil {
		return nil
	}
	return e.ready[:]
}

// newCredEntry is the entry of a Credential parsed as parseCredential did.
func newCredEntry(obj *credInput, c *Credential, reason, msg string) credEntry {
	return credEntry{obj: obj, cred: c, problem: msg, missing: reason == authv1alpha1.ReasonSecretNotFound}
}

type authzEntry struct {
	obj         *authv1alpha1.CustomAuthorizer
	a           *Authorizer // nil when not ready
	reason, msg string
	conds       []metav1.Condition
}

type bindEntry struct {
	obj         *authv1alpha1.APIBinding
	invalidSpec string
	refsReason  string
	refsMsg     string
	conflicts   []string
	b           *Binding
	conds       []metav1.Condition
}

// An entry keeps the conditions of its object's status; the rest of the status (UID,
// generation, appKey, bound bindings) is read from the entry when it is reported, not kept:
// 100,000 statuses would cost 9 MB.

func (e *credEntry) statusOf(k nn) ObjectStatus {
	st := ObjectStatus{
		Key:                ObjectKey{KindCredential, k},
		UID:                e.obj.uid().text(),
		ObservedGeneration: e.obj.generation,
		Conditions:         e.conds(),
		BoundBindings:      e.bound,
	}
	if e.cred != nil {
		st.AppKey = e.cred.AppKey
	}
	return st
}

func (e *authzEntry) statusOf(k nn) ObjectStatus {
	return ObjectStatus{Key: ObjectKey{KindCustomAuthorizer, k}, UID: e.obj.UID, ObservedGeneration: e.obj.Generation, Conditions: e.conds}
}

func (e *bindEntry) statusOf(k nn) ObjectStatus {
	return ObjectStatus{Key: ObjectKey{KindAPIBinding, k}, UID: e.obj.UID, ObservedGeneration: e.obj.Generation, Conditions: e.conds}
}

// getter is a pmap or a pmapEdit.
type getter[V any] interface{ Get(nn) (V, bool) }

// statusOf returns the status of object k as the entries of creds, authz and binds say; ok is
// false when there is no entry for it.
func statusOf(k ObjectKey, creds getter[*credEntry], authz getter[*authzEntry], binds getter[*bindEntry]) (st ObjectStatus, ok bool) {
	switch k.Kind {
	case KindCredential:
		if e, ok := creds.Get(k.NamespacedName); ok {
			return e.statusOf(k.NamespacedName), true
		}
	case KindCustomAuthorizer:
		if e, ok := authz.Get(k.NamespacedName); ok {
			return e.statusOf(k.NamespacedName), true
		}
	case KindAPIBinding:
		if e, ok := binds.Get(k.NamespacedName); ok {
			return e.statusOf(k.NamespacedName), true
		}
	}
	return ObjectStatus{}, false
}

func newState() *state {
	return &state{
		creds:       newPmap[nn, *credEntry](hashNN),
		authz:       newPmap[nn, *authzEntry](hashNN),
		binds:       newPmap[nn, *bindEntry](hashNN),
		secretAuthz: newPmap[nn, refs](hashNN),
		authzUsers:  newPmap[nn, refs](hashNN),
	}
}

type set[K comparable] map[K]struct{}

func (s set[K]) add(k K) { s[k] = struct{}{} }

func keySet[V comparable](m *nsMap[V]) set[nn] {
	s := make(set[nn], m.n)
	m.all(func(k nn, _ V) { s.add(k) })
	return s
}

// builder is one build in progress: copy-on-write edits of the previous state.
type builder struct {
	in *Inputs

	creds       *pmapEdit[nn, *credEntry]
	authz       *pmapEdit[nn, *authzEntry]
	binds       *pmapEdit[nn, *bindEntry]
	secretAuthz *pmapEdit[nn, refs]
	authzUsers  *pmapEdit[nn, refs]

	hosts     *pmapEdit[string, *HostTable]
	wildcards *pmapEdit[string, *HostTable]
	appKeys   *claimsEdit[string]
	appCodes  *claimsEdit[[sha256.Size]byte]

	full    bool           // building from nothing: every entry is new
	ownCred set[nn]        // credential entries created by this build (safe to change)
	pending set[ObjectKey] // the objects whose status this build computed (their entries hold it)

	nsBindings map[string][]*Binding
	conds      condCache

	// fullCreds are the credentials of a full build, as credentialsFull compiled them.
	fullCreds struct {
		keys    []nn
		entries []credEntry
	}
}

// condCache shares the conditions of statuses that say the same: 100,000 valid Credentials
// (one condition) or 10,000 valid APIBindings (three) of one generation. A status is
// read-only once built. A cache is used by one goroutine at a time.
type condCache map[condKey][]metav1.Condition

// condKey is a list of up to three conditions (a binding's status has three).
type condKey struct {
	n int
	c [3]metav1.Condition
}

// one returns the conditions of a status that has just c.
func (cc condCache) one(c metav1.Condition) []metav1.Condition {
	return cc.share([]metav1.Condition{c})
}

// workerConds returns the condition cache for worker w of a fanOut: the build's own for the
// first, a fresh one for each other (a cache is used by one goroutine at a time).
func (b *builder) workerConds(w int) condCache {
	if w == 0 {
		return b.conds
	}
	return condCache{}
}

// share returns a shared list equal to conds, which it does not keep.
func (cc condCache) share(conds []metav1.Condition) []metav1.Condition {
	if len(conds) > len(condKey{}.c) {
		return slices.Clone(conds)
	}
	k := condKey{n: len(conds)}
	copy(k.c[:], conds)
	if s, ok := cc[k]; ok {
		return s
	}
	s := slices.Clone(conds)
	cc[k] = s
	return s
}

// Build compiles the inputs into a snapshot. With prev (the snapshot last built from the
// same Inputs) it redoes only what the objects changed since then reach, and shares the rest
// with prev; without it, it builds everything. Both give the same snapshot. It returns the
// statuses that differ from those of prev (on a full build, all of them).
func Build(in *Inputs, prev *Snapshot) (*Snapshot, Changes) {
	changes, all := in.takeChanges()
	st := prev.stateOrNil()
	if all {
		st = nil // the first build from in: prev cannot have been built from it
	}
	full := st == nil
	var version uint64 = 1
	if full {
		st = newState()
		prev = &Snapshot{
			hosts:     newPmap[string, *HostTable](hashString),
			wildcards: newPmap[string, *HostTable](hashString),
			appKeys:   newClaims[string](hashString),
			appCodes:  newClaims[[sha256.Size]byte](hashDigest),
		}
	} else {
		version = prev.Version + 1
	}
	b := &builder{
		in:          in,
		creds:       st.creds.edit(),
		authz:       st.authz.edit(),
		binds:       st.binds.edit(),
		secretAuthz: st.secretAuthz.edit(),
		authzUsers:  st.authzUsers.edit(),
		hosts:       prev.hosts.edit(),
		wildcards:   prev.wildcards.edit(),
		appKeys:     prev.appKeys.edit(),
		appCodes:    prev.appCodes.edit(),
		ownCred:     set[nn]{},
		pending:     set[ObjectKey]{},
		conds:       condCache{},
	}

	var dirtyCreds, dirtyAuthz, dirtyBinds set[nn]
	if full {
		// Everything is new: no reverse index to consult.
		dirtyAuthz, dirtyBinds = keySet(&in.authorizers), keySet(&in.bindings) // credentials: all of them, see credentials
		b.full = true
		nc := in.credentials.n
		b.creds.presize(nc)
		b.appKeys.presize(nc)
		b.binds.presize(in.bindings.n)
	} else {
		dirtyCreds, dirtyAuthz, dirtyBinds = set[nn]{}, set[nn]{}, set[nn]{}
		for k := range changes {
			switch k.Kind {
			case KindCredential:
				dirtyCreds.add(k.NamespacedName)
			case KindCustomAuthorizer:
				dirtyAuthz.add(k.NamespacedName)
			case KindAPIBinding:
				dirtyBinds.add(k.NamespacedName)
			case KindSecret:
				for name := range in.secretUsers.of(k.NamespacedName).all() {
					dirtyCreds.add(nn{Namespace: k.Namespace, Name: name})
				}
				authz, _ := b.secretAuthz.Get(k.NamespacedName)
				for name := range authz.all() {
					dirtyAuthz.add(nn{Namespace: k.Namespace, Name: name})
				}
			}
		}
	}

	recount := b.credentials(dirtyCreds, dirtyBinds)
	b.authorizers(dirtyAuthz, dirtyBinds)
	b.bindings(dirtyBinds, recount, full)
	b.credentialStatuses(recount)

	// Report the statuses that differ from what prev published. A full build reports every
	// status (Changes reads them from the snapshot) and so records none in pending (emit).
	var out []ObjectStatus
	for k := range b.pending {
		next, ok := statusOf(k, b.creds, b.authz, b.binds)
		if !ok {
			continue
		}
		if cur, ok := statusOf(k, &st.creds, &st.authz, &st.binds); ok && cur.Equal(&next) {
			continue
		}
		out = append(out, next)
	}
	snap := &Snapshot{
		Version:   version,
		BuiltAt:   in.Now,
		hosts:     b.hosts.freeze(),
		wildcards: b.wildcards.freeze(),
		appKeys:   b.appKeys.freeze(),
		appCodes:  b.appCodes.freeze(),
		st: &state{
			creds:       b.creds.freeze(),
			authz:       b.authz.freeze(),
			binds:       b.binds.freeze(),
			secretAuthz: b.secretAuthz.freeze(),
			authzUsers:  b.authzUsers.freeze(),
		},
	}
	if full {
		return snap, Changes{all: snap.st}
	}
	return snap, Changes{list: out}
}

func (s *Snapshot) stateOrNil() *state {
	if s == nil {
		return nil
	}
	return s.st
}

// addRef and dropRef keep a reverse index: which objects name a target.
//
// In a full build (full) every slice is the build's own and each user adds all its targets
// before the next user starts, so a repeat is always the last element and the slice can grow
// in place: an authorizer named by 10,000 bindings costs 10,000 appends, not 10,000 copies.
func addRef(m *pmapEdit[nn, refs], target nn, user string, full bool) {
	users, _ := m.Get(target)
	if full {
		if users.last() != user {
			m.Set(target, users.with(user, true))
		}
		return
	}
	if users.contains(user) {
		return
	}
	m.Set(target, users.with(user, false))
}

func dropRef(m *pmapEdit[nn, refs], target nn, user string) {
	users, _ := m.Get(target)
	rest, found := users.without(user)
	switch {
	case !found:
	case rest.first == "":
		m.Delete(target)
	default:
		m.Set(target, rest)
	}
}

// without returns a copy of list without v (list is shared with a published snapshot), and
// whether v was in it.
func without[V comparable](list []V, v V) (rest []V, found bool) {
	i := slices.Index(list, v)
	if i < 0 {
		return list, false
	}
	return slices.Delete(slices.Clone(list), i, i+1), true
}

// ---- Credentials ---------------------------------------------------------------------

func (b *builder) mutCred(k nn) *credEntry {
	e, ok := b.creds.Get(k)
	if !ok {
		return nil
	}
	if _, own := b.ownCred[k]; !own && !b.full {
		c := *e
		e = &c
		b.creds.Set(k, e)
		b.ownCred.add(k)
	}
	return e
}

// addClaim records that credential k claims key (an appKey or an AppCode digest); the
// claims stay ordered oldest first.
func addClaim[K comparable](b *builder, m *claimsEdit[K], key K, k nn) {
	o, _ := m.Get(key)
	claims := append(slices.Clone(o.claims()), k)
	slices.SortFunc(claims, b.credAge)
	m.Set(key, o.withClaims(claims))
}

// dropClaim removes credential k's claim on key; the entry goes with the last claim.
func dropClaim[K comparable](m *claimsEdit[K], key K, k nn) {
	o, _ := m.Get(key)
	rest, found := without(o.claims(), k)
	switch {
	case !found:
	case len(rest) == 0:
		m.Delete(key)
	default:
		m.Set(key, o.withClaims(rest))
	}
}

// claimsOf returns the credentials claiming key, oldest first.
func claimsOf[K comparable](m *claimsEdit[K], key K) []nn {
	o, _ := m.Get(key)
	return o.claims()
}

// firstClaim returns the oldest credential claiming key, which is claimed.
func firstClaim[K comparable](m *claimsEdit[K], key K) nn {
	o, _ := m.Get(key)
	k, _ := o.first()
	return k
}

func (b *builder) credAge(x, y nn) int {
	cx, cy := b.in.credentials.get(x), b.in.credentials.get(y)
	return cmp.Or(cx.created().compare(cy.created()),
		strings.Compare(x.Namespace, y.Namespace), strings.Compare(x.Name, y.Name))
}

// credentials recompiles the changed Credentials, resolves who owns each appKey and AppCode
// they touch, and updates the lookup indexes. It returns the credentials whose status must be
// written again.
func (b *builder) credentials(dirty, dirtyBinds set[nn]) set[nn] {
	if b.full {
		b.credentialsFull()
		return set[nn]{}
	}
	keys, codes := set[string]{}, set[[sha256.Size]byte]{}
	reeval := make(set[nn], len(dirty))
	visit := func(k nn) {
		old, _ := b.creds.Get(k)
		obj := b.in.credentials.get(k)
		if old != nil && old.cred != nil {
			dropClaim(b.appKeys, old.cred.AppKey, k)
			keys.add(old.cred.AppKey)
			for _, d := range old.cred.appendCodes(nil) {
				dropClaim(b.appCodes, d, k)
				codes.add(d)
			}
		}
		if (obj == nil) != (old == nil) {
			for u := range b.in.credUsers.of(k).all() {
				dirtyBinds.add(nn{Namespace: k.Namespace, Name: u})
			}
		}
		if obj == nil {
			b.creds.Delete(k)
			return
		}
		c, ds, reason, msg := parseCredential(k, obj, b.in.secrets.get(nn{Namespace: k.Namespace, Name: obj.secretName}))
		e := new(newCredEntry(obj, c, reason, msg))
		if old != nil {
			e.bound = old.bound
		}
		b.creds.Set(k, e)
		b.ownCred.add(k)
		reeval.add(k)
		if c != nil {
			addClaim(b, b.appKeys, c.AppKey, k)
			keys.add(c.AppKey)
			for _, d := range ds {
				addClaim(b, b.appCodes, d, k)
				codes.add(d)
			}
		}
	}
	for k := range dirty {
		visit(k)
	}
	for key := range keys {
		for _, k := range claimsOf(b.appKeys, key) {
			reeval.add(k)
		}
	}
	for d := range codes {
		for _, k := range claimsOf(b.appCodes, d) {
			reeval.add(k)
		}
	}
	var ds [][sha256.Size]byte
	for k := range reeval {
		e := b.mutCred(k)
		if e == nil || e.cred == nil {
			continue
		}
		ds = e.cred.appendCodes(ds[:0])
		b.settleConflict(k, e, ds)
		keys.add(e.cred.AppKey)
		for _, d := range ds {
			codes.add(d)
		}
	}
	for key := range keys {
		setOwner(b, b.appKeys, key)
	}
	for d := range codes {
		setOwner(b, b.appCodes, d)
	}
	return reeval
}

// credentialsFull compiles every Credential into empty indexes. The Credentials are parsed
// in parallel; then each worker fills the shards of every index that are its own (shard
// index modulo the number of workers), so no two workers write one map.
func (b *builder) credentialsFull() {
	keys := make([]nn, 0, b.in.credentials.n)
	b.in.credentials.all(func(k nn, _ *credInput) { keys = append(keys, k) })
	entries := make([]credEntry, len(keys)) // one allocation for all of them
	// codes are the digests of each one's AppCodes, for this build only.
	codes := make([][][sha256.Size]byte, len(keys))
	b.fullCreds.keys, b.fullCreds.entries = keys, entries
	workers := buildWorkers(len(keys))
	fanOut(workers, func(w int) {
		for i := w; i < len(keys); i += workers {
			k := keys[i]
			obj := b.in.credentials.get(k)
			ref := nn{Namespace: k.Namespace, Name: obj.secretName}
			c, ds, reason, msg := parseCredential(k, obj, b.in.secrets.get(ref))
			entries[i], codes[i] = newCredEntry(obj, c, reason, msg), ds
		}
	})
	n := 0
	for i := range codes {
		n += len(codes[i])
	}
	b.appCodes.presize(n)
	mine := func(shard uint64, w int) bool { return shard%uint64(workers) == uint64(w) }
	fanOut(workers, func(w int) {
		for i, k := range keys {
			e := &entries[i]
			if mine(b.creds.shard(k), w) {
				b.creds.Set(k, e)
			}
			if e.cred == nil {
				continue
			}
			if mine(b.appKeys.shard(e.cred.AppKey), w) {
				claimFull(b, b.appKeys, e.cred.AppKey, k, e.cred)
			}
			for _, d := range codes[i] {
				if mine(b.appCodes.shard(d), w) {
					claimFull(b, b.appCodes, d, k, e.cred)
				}
			}
		}
	})
	// With every claim in, settle the conflicts; then the oldest claimant of each appKey and
	// code makes itself its owner if it is usable and lost nothing, else leaves it to none.
	fanOut(workers, func(w int) {
		for i := w; i < len(keys); i += workers {
			b.settleConflict(keys[i], &entries[i], codes[i])
		}
	})
	fanOut(workers, func(w int) {
		for i, k := range keys {
			e := &entries[i]
			if e.cred == nil {
				continue
			}
			var owner *Credential
			if e.conflict() == "" && e.cred.Usable(b.in.Now) {
				owner = e.cred
			}
			if mine(b.appKeys.shard(e.cred.AppKey), w) && firstClaim(b.appKeys, e.cred.AppKey) == k {
				setCred(b.appKeys, e.cred.AppKey, owner)
			}
			for _, d := range codes[i] {
				if mine(b.appCodes.shard(d), w) && firstClaim(b.appCodes, d) == k {
					setCred(b.appCodes, d, owner)
				}
			}
		}
	})
}

// claimFull is addClaim for a full build, which makes a key's first claimant c (of
// credential k) its provisional owner, with no list: a key only one credential claims costs
// no allocation. credentialsFull settles every owner once all claims are in.
func claimFull[K comparable](b *builder, m *claimsEdit[K], key K, k nn, c *Credential) {
	if _, ok := m.Get(key); !ok {
		m.Set(key, owned{cred: c})
		return
	}
	addClaim(b, m, key, k)
}

// parallelMin is the number of objects below which a full build works on one goroutine:
// starting more costs more than it saves.
const parallelMin = 2048

// buildWorkers is how many goroutines a full build of n objects uses (a variable so that a
// test can compare any number of workers with one).
var buildWorkers = func(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/parallelMin))
}

// fanOut runs f(0), ..., f(n-1) on n goroutines and waits for them.
func fanOut(n int, f func(w int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}

// settleConflict records whether credential k lost its appKey or one of its AppCodes (codes,
// their digests) to an older credential.
func (b *builder) settleConflict(k nn, e *credEntry, codes [][sha256.Size]byte) {
	if e.cred == nil {
		return
	}
	e.problem = ""
	if first := firstClaim(b.appKeys, e.cred.AppKey); first != k {
		e.problem = fmt.Sprintf("appKey %q is already used by the older Credential %s", e.cred.AppKey, first)
		return
	}
	for i, d := range codes {
		if first := firstClaim(b.appCodes, d); first != k {
			e.problem = fmt.Sprintf("AppCode #%d is already used by the older Credential %s", i+1, first)
			return
		}
	}
}

// owner returns the credential that may use a key or code claimed first by k: k, if it is
// usable and lost nothing else.
func (b *builder) owner(k nn) *Credential {
	e, _ := b.creds.Get(k)
	if e == nil || e.cred == nil || e.conflict() != "" || !e.cred.Usable(b.in.Now) {
		return nil
	}
	return e.cred
}

// setOwner makes the owner of key the credential that may use it now (see owner).
func setOwner[K comparable](b *builder, m *claimsEdit[K], key K) {
	o, ok := m.Get(key)
	if !ok {
		return // nobody claims it
	}
	first, _ := o.first()
	setCred(m, key, b.owner(first))
}

// setCred makes c the credential that may use key, which is claimed.
func setCred[K comparable](m *claimsEdit[K], key K, c *Credential) {
	o, _ := m.Get(key)
	if o.cred == c {
		return // an edit that writes nothing copies nothing
	}
	m.Set(key, o.withCred(c))
}

// credentialStatuses counts the bindings of the credentials in recount and emits every
// credential status that changed.
func (b *builder) credentialStatuses(recount set[nn]) {
	if b.full {
		counts := make(map[string]map[string]int32, len(b.in.credentials.byNS))
		for ns, creds := range b.in.credentials.byNS {
			counts[ns] = b.countBindings(ns, creds)
		}
		keys, entries := b.fullCreds.keys, b.fullCreds.entries
		workers := buildWorkers(len(keys))
		fanOut(workers, func(w int) {
			conds := b.workerConds(w)
			for i := w; i < len(keys); i += workers {
				k, e := keys[i], &entries[i]
				e.bound = counts[k.Namespace][k.Name]
				b.credentialStatus(k, e, conds)
			}
		})
		return
	}
	for k := range recount {
		e := b.mutCred(k)
		if e == nil {
			continue
		}
		e.bound = 0
		for _, bd := range b.namespaceBindings(k.Namespace) {
			if bd.bindsObject(k, e.obj) {
				e.bound++
			}
		}
		b.credentialStatus(k, e, b.conds)
	}
}

// countBindings counts, for each credential of ns, the bindings that accept it. Bindings
// naming credentials count them directly; only selectors look at every credential.
func (b *builder) countBindings(ns string, creds map[string]*credInput) map[string]int32 {
	counts := make(map[string]int32, len(creds))
	for _, bd := range b.namespaceBindings(ns) {
		if bd.App.selector == nil {
			for _, name := range bd.App.names {
				if _, ok := creds[name]; ok {
					counts[name]++
				}
			}
			continue
		}
		for name, c := range creds {
			if bd.App.named(name) || bd.App.selector.Matches(labels.Set(c.labels)) {
				counts[name]++
			}
		}
	}
	return counts
}

// credentialStatus computes the status of credential k.
func (b *builder) credentialStatus(k nn, e *credEntry, conds condCache) {
	gen := e.obj.generation
	var ready []metav1.Condition
	switch {
	case e.cred == nil:
		reason := authv1alpha1.ReasonSecretInvalid
		if e.missing {
			reason = authv1alpha1.ReasonSecretNotFound
		}
		ready = conds.one(condition(authv1alpha1.ConditionReady, false, reason, e.problem, gen))
	case e.problem != "":
		ready = conds.one(condition(authv1alpha1.ConditionReady, false, authv1alpha1.ReasonAppKeyConflict, e.problem, gen))
	case e.cred.Disabled():
		ready = conds.one(condition(authv1alpha1.ConditionReady, false, authv1alpha1.ReasonDisabled, "spec.disabled is true", gen))
	case !e.cred.Usable(b.in.Now):
		ready = []metav1.Condition{condition(authv1alpha1.ConditionReady, false, authv1alpha1.ReasonExpired,
			"expired at "+e.cred.ExpiresAt().UTC().Format("2006-01-02T15:04:05Z"), gen)}
	default:
		ready = conds.one(condition(authv1alpha1.ConditionReady, true, authv1alpha1.ReasonValid, "the credential is in use", gen))
	}
	e.ready = (*[1]metav1.Condition)(ready)
	b.emit(ObjectKey{KindCredential, k})
}

// namespaceBindings returns the compiled bindings of ns (read once per build, after the
// bindings are compiled).
func (b *builder) namespaceBindings(ns string) []*Binding {
	if bs, ok := b.nsBindings[ns]; ok {
		return bs
	}
	var bs []*Binding
	for name := range b.in.bindings.namespace(ns) {
		if be, _ := b.binds.Get(nn{Namespace: ns, Name: name}); be != nil && be.b.App != nil {
			bs = append(bs, be.b)
		}
	}
	if b.nsBindings == nil {
		b.nsBindings = map[string][]*Binding{}
	}
	b.nsBindings[ns] = bs
	return bs
}

// emit records that the status of k was computed in this build (into its entry); a full
// build reports every status anyway.
func (b *builder) emit(k ObjectKey) {
	if !b.full {
		b.pending.add(k)
	}
}

// ---- CustomAuthorizers --------------------------------------------------------------

func (b *builder) authorizers(dirty, dirtyBinds set[nn]) {
	for k := range dirty {
		old, _ := b.authz.Get(k)
		obj := b.in.authorizers.get(k)
		ref := func(o *authv1alpha1.CustomAuthorizer) (nn, bool) {
			if o == nil || o.Spec.UserDataFrom == nil {
				return nn{}, false
			}
			return nn{Namespace: k.Namespace, Name: o.Spec.UserDataFrom.SecretKeyRef.Name}, true
		}
		var oldObj *authv1alpha1.CustomAuthorizer
		if old != nil {
			oldObj = old.obj
		}
		oldRef, hadOld := ref(oldObj)
		newRef, hasNew := ref(obj)
		if hadOld && (!hasNew || oldRef != newRef) {
			dropRef(b.secretAuthz, oldRef, k.Name)
		}
		if hasNew && (!hadOld || oldRef != newRef) {
			addRef(b.secretAuthz, newRef, k.Name, b.full)
		}
		users, _ := b.authzUsers.Get(k)
		for u := range users.all() {
			dirtyBinds.add(nn{Namespace: k.Namespace, Name: u})
		}
		if obj == nil {
			b.authz.Delete(k)
			continue
		}
		a, reason, msg := compileAuthorizer(obj, &b.in.secrets)
		e := &authzEntry{obj: obj, a: a, reason: reason, msg: msg}
		if msg == "" {
			msg = "the authorizer is in use"
		}
		e.conds = b.conds.one(condition(authv1alpha1.ConditionReady, a != nil, reason, msg, obj.Generation))
		b.emit(ObjectKey{KindCustomAuthorizer, k})
		b.authz.Set(k, e)
	}
}

// ---- APIBindings --------------------------------------------------------------------

func bindingRefs(o *authv1alpha1.APIBinding) (authz string, creds []string) {
	if o == nil {
		return "", nil
	}
	if o.Spec.CustomAuthorizer != nil {
		authz = o.Spec.CustomAuthorizer.Name
	}
	if o.Spec.App != nil {
		creds = o.Spec.App.Credentials
	}
	return authz, creds
}

func (b *builder) bindings(dirty set[nn], recount set[nn], full bool) {
	dirtyHosts := set[string]{}
	joins := map[string][]nn{}
	reaccept := set[nn]{}
	// A full build compiles every binding first, in parallel (it has no old entries and no
	// route conflicts yet), then indexes them one by one.
	var compiled map[nn]*bindEntry
	if full {
		compiled = b.compileBindingsFull(dirty)
	}
	for k := range dirty {
		old, _ := b.binds.Get(k)
		obj := b.in.bindings.get(k)
		var oldObj *authv1alpha1.APIBinding
		if old != nil {
			oldObj = old.obj
		}
		oa, _ := bindingRefs(oldObj)
		na, _ := bindingRefs(obj)
		if oa != na {
			if oa != "" {
				dropRef(b.authzUsers, nn{Namespace: k.Namespace, Name: oa}, k.Name)
			}
			if na != "" {
				addRef(b.authzUsers, nn{Namespace: k.Namespace, Name: na}, k.Name, b.full)
			}
		}
		if oldObj != nil {
			for _, h := range oldObj.Spec.Hosts {
				dirtyHosts.add(h)
			}
		}
		if obj == nil {
			b.binds.Delete(k)
			if !full {
				b.recountNamespace(k.Namespace, old.b, nil, recount)
			}
			continue
		}
		for _, h := range obj.Spec.Hosts {
			dirtyHosts.add(h)
			if oldObj == nil || !slices.Contains(oldObj.Spec.Hosts, h) {
				joins[h] = append(joins[h], k)
			}
		}
		var conflicts []string
		var oldB *Binding
		if old != nil {
			conflicts, oldB = old.conflicts, old.b
		}
		e := compiled[k]
		if e == nil {
			e = b.compileBinding(obj, conflicts, b.conds)
		}
		b.binds.Set(k, e)
		if !full && (oldObj == nil || !apiequality.Semantic.DeepEqual(oldObj.Spec.App, obj.Spec.App)) {
			b.recountNamespace(k.Namespace, oldB, e.b, recount)
		}
		reaccept.add(k)
	}

	for len(dirtyHosts) > 0 {
		hosts := dirtyHosts
		dirtyHosts = set[string]{}
		for h := range hosts {
			b.rebuildHost(h, joins[h], reaccept)
		}
		joins = nil
		for k := range reaccept {
			e, _ := b.binds.Get(k)
			if e == nil {
				continue
			}
			var conflicts []string
			for _, h := range e.obj.Spec.Hosts {
				if t := b.table(h); t != nil {
					conflicts = append(conflicts, t.conflicts[k]...)
				}
			}
			slices.Sort(conflicts)
			if slices.Equal(conflicts, e.conflicts) {
				continue
			}
			b.binds.Set(k, b.compileBinding(e.obj, conflicts, b.conds))
			for _, h := range e.obj.Spec.Hosts {
				dirtyHosts.add(h)
			}
		}
		reaccept = set[nn]{}
	}
}

// recountNamespace adds to recount the credentials of ns that oldB and newB bind differently.
func (b *builder) recountNamespace(ns string, oldB, newB *Binding, recount set[nn]) {
	for name, obj := range b.in.credentials.namespace(ns) {
		if k := (nn{Namespace: ns, Name: name}); oldB.bindsObject(k, obj) != newB.bindsObject(k, obj) {
			recount.add(k)
		}
	}
}

// bindsObject reports whether the binding accepts the Credential k, whose labels c holds
// (false for a nil binding).
func (bd *Binding) bindsObject(k nn, c *credInput) bool {
	if bd == nil || bd.App == nil || k.Namespace != bd.Namespace {
		return false
	}
	return bd.App.named(k.Name) || bd.App.selector != nil && bd.App.selector.Matches(labels.Set(c.labels))
}

// compileBindingsFull compiles the bindings of keys for a full build, on several
// goroutines: without route conflicts, compileBinding only reads the builder.
func (b *builder) compileBindingsFull(keys set[nn]) map[nn]*bindEntry {
	objs := make([]*authv1alpha1.APIBinding, 0, len(keys))
	for k := range keys {
		if o := b.in.bindings.get(k); o != nil {
			objs = append(objs, o)
		}
	}
	entries := make([]*bindEntry, len(objs))
	workers := buildWorkers(len(objs))
	fanOut(workers, func(w int) {
		conds := b.workerConds(w)
		for i := w; i < len(objs); i += workers {
			entries[i] = b.compileBinding(objs[i], nil, conds)
		}
	})
	out := make(map[nn]*bindEntry, len(objs))
	for i, o := range objs {
		out[nnOf(o)] = entries[i]
	}
	return out
}

// stripHeaders and stripPrefixes are what every allowed request loses (see
// Binding.StripHeaders); a binding without context headers shares them, read-only.
var (
	stripHeaders  = [...]string{HeaderAppCode, HeaderApigAppCode}
	stripPrefixes = [...]string{PortcullisPrefix}
)

// sortedNames is names sorted, without repeats: names itself when it already is (as a
// generated list usually is), else a copy.
func sortedNames(names []string) []string {
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			sorted := slices.Clone(names)
			slices.Sort(sorted)
			return slices.Clip(slices.Compact(sorted))
		}
	}
	return names[:len(names):len(names)]
}

// compileBinding compiles an APIBinding given the route conflicts it has, and computes its
// status (sharing condition lists through cc).
func (b *builder) compileBinding(obj *authv1alpha1.APIBinding, conflicts []string, cc condCache) *bindEntry {
	k := nnOf(obj)
	e := &bindEntry{obj: obj, conflicts: conflicts, invalidSpec: validateBinding(&obj.Spec)}
	spec := &obj.Spec
	bd := &Binding{ObjectRef: refOf(obj), Generation: obj.Generation, Anonymous: spec.Anonymous}
	if app := spec.App; app != nil {
		f := &AppFactor{AllowUnsignedPayload: app.AllowUnsignedPayload}
		if len(app.Methods) == 0 {
			f.Signature = true
		}
		for _, m := range app.Methods {
			f.Signature = f.Signature || m == authv1alpha1.AppAuthSignature
			f.AppCode = f.AppCode || m == authv1alpha1.AppAuthAppCode
		}
		if len(app.Credentials) > 0 {
			f.names = sortedNames(app.Credentials)
		}
		if app.CredentialSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(app.CredentialSelector)
			if err != nil && e.invalidSpec == "" {
				e.invalidSpec = "app.credentialSelector: " + err.Error()
			}
			f.selector = sel
		}
		bd.App = f
		var missing []string
		for _, n := range app.Credentials {
			if b.in.credentials.get(nn{Namespace: obj.Namespace, Name: n}) == nil {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			e.refsReason = authv1alpha1.ReasonCredentialNotFound
			e.refsMsg = fmt.Sprintf("Credential %s not found in namespace %s", strings.Join(missing, ", "), obj.Namespace)
		}
	}
	if ref := spec.CustomAuthorizer; ref != nil && e.refsMsg == "" {
		ae, _ := b.authz.Get(nn{Namespace: obj.Namespace, Name: ref.Name})
		switch {
		case ae == nil:
			e.refsReason = authv1alpha1.ReasonAuthorizerNotFound
			e.refsMsg = fmt.Sprintf("CustomAuthorizer %s/%s not found", obj.Namespace, ref.Name)
		case ae.a == nil:
			e.refsReason = authv1alpha1.ReasonAuthorizerNotReady
			e.refsMsg = fmt.Sprintf("CustomAuthorizer %s/%s is not ready: %s", obj.Namespace, ref.Name, ae.msg)
		default:
			bd.Authorizer = ae.a
		}
	}
	bd.StripHeaders, bd.StripPrefixes = stripHeaders[:], stripPrefixes[:]
	if up := spec.Upstream; up != nil {
		bd.ContextHeaderPrefix = strings.ToLower(up.ContextHeaderPrefix)
		if len(up.ContextHeaders) > 0 {
			bd.ContextHeaders = make([]ContextHeader, 0, len(up.ContextHeaders))
			bd.StripHeaders = make([]string, len(stripHeaders), len(stripHeaders)+len(up.ContextHeaders))
			copy(bd.StripHeaders, stripHeaders[:])
		}
		for _, h := range up.ContextHeaders {
			header := strings.ToLower(h.Header)
			bd.ContextHeaders = append(bd.ContextHeaders, ContextHeader{Context: h.Context, Header: header})
			bd.StripHeaders = append(bd.StripHeaders, header)
		}
		if bd.ContextHeaderPrefix != "" {
			bd.StripPrefixes = append(stripPrefixes[:len(stripPrefixes):len(stripPrefixes)], bd.ContextHeaderPrefix)
		}
	}
	gen := obj.Generation
	conds := make([]metav1.Condition, 0, 3)
	var why []string
	switch {
	case e.invalidSpec != "":
		conds = append(conds, condition(authv1alpha1.ConditionAccepted, false, authv1alpha1.ReasonInvalid, e.invalidSpec, gen))
		why = append(why, e.invalidSpec)
	case len(conflicts) > 0:
		msg := strings.Join(conflicts, "; ")
		conds = append(conds, condition(authv1alpha1.ConditionAccepted, false, authv1alpha1.ReasonRouteConflict, msg, gen))
		why = append(why, msg)
	default:
		conds = append(conds, condition(authv1alpha1.ConditionAccepted, true, authv1alpha1.ReasonAccepted, "every route is owned by this binding", gen))
	}
	if e.refsMsg != "" {
		conds = append(conds, condition(authv1alpha1.ConditionResolvedRefs, false, e.refsReason, e.refsMsg, gen))
		why = append(why, e.refsMsg)
	} else {
		conds = append(conds, condition(authv1alpha1.ConditionResolvedRefs, true, authv1alpha1.ReasonResolvedRefs, "every reference is resolved", gen))
	}
	if len(why) > 0 {
		reason := conds[0].Reason
		if conds[0].Status == metav1.ConditionTrue {
			reason = e.refsReason
		}
		bd.Invalid = strings.Join(why, "; ")
		bd.Authorizer = nil
		conds = append(conds, condition(authv1alpha1.ConditionReady, false, reason, "its routes deny every request: "+bd.Invalid, gen))
	} else {
		conds = append(conds, condition(authv1alpha1.ConditionReady, true, authv1alpha1.ReasonValid, "the binding is in force", gen))
	}
	e.b = bd
	e.conds = cc.share(conds)
	b.emit(ObjectKey{KindAPIBinding, k})
	return e
}

// ---- Host tables --------------------------------------------------------------------

func (b *builder) tableEdit(h string) (*pmapEdit[string, *HostTable], string) {
	if suffix, ok := strings.CutPrefix(h, "*."); ok {
		return b.wildcards, suffix
	}
	return b.hosts, h
}

func (b *builder) table(h string) *HostTable {
	m, key := b.tableEdit(h)
	t, _ := m.Get(key)
	return t
}

// rebuildHost rebuilds the route table of host pattern h from the bindings naming it,
// oldest first: each claim goes to the oldest binding making it. Bindings whose lost claims
// on h changed are added to reaccept.
func (b *builder) rebuildHost(h string, joins []nn, reaccept set[nn]) {
	m, key := b.tableEdit(h)
	old, _ := m.Get(key)
	var members []*bindEntry
	seen := set[nn]{}
	consider := func(k nn) {
		if _, dup := seen[k]; dup {
			return
		}
		seen.add(k)
		if e, _ := b.binds.Get(k); e != nil && slices.Contains(e.obj.Spec.Hosts, h) {
			members = append(members, e)
		}
	}
	if old != nil {
		for _, k := range old.bindings {
			consider(k)
		}
	}
	for _, k := range joins {
		consider(k)
	}
	slices.SortFunc(members, func(x, y *bindEntry) int {
		switch {
		case older(x.obj, y.obj):
			return -1
		case older(y.obj, x.obj):
			return 1
		}
		return 0
	})
	var t *HostTable
	if len(members) > 0 {
		t = &HostTable{Host: h, bindings: make([]nn, 0, len(members))}
		for _, e := range members {
			t.add(e)
		}
		m.Set(key, t)
	} else {
		m.Delete(key)
	}
	var oldConflicts, newConflicts map[nn][]string
	if old != nil {
		oldConflicts = old.conflicts
	}
	if t != nil {
		newConflicts = t.conflicts
	}
	for k, c := range oldConflicts {
		if !slices.Equal(c, newConflicts[k]) {
			reaccept.add(k)
		}
	}
	for k, c := range newConflicts {
		if !slices.Equal(c, oldConflicts[k]) {
			reaccept.add(k)
		}
	}
}

// add installs the routes of one binding; every binding already in t is older.
func (t *HostTable) add(e *bindEntry) {
	k := nnOf(e.obj)
	t.bindings = append(t.bindings, k)
	for i := range e.obj.Spec.Routes {
		r := &e.obj.Spec.Routes[i]
		path, match := routeKey(r)
		s := t.paths.add(path, match == authv1alpha1.PathMatchExact, len(e.obj.Spec.Routes)-i)
		route := &Route{Binding: e.b, Index: i, Path: path, Match: match, Methods: methodsOf(r.Methods)}
		lost := func(winner *Route, m Method) {
			msg := fmt.Sprintf("%s %s %s [%s] is claimed by the older APIBinding %s", t.Host, match, path, m, winner.Binding.Ref)
			if t.conflicts == nil {
				t.conflicts = map[nn][]string{}
			}
			if !slices.Contains(t.conflicts[k], msg) {
				t.conflicts[k] = append(t.conflicts[k], msg)
			}
		}
		if route.Methods == 0 {
			switch {
			case s.any == nil:
				s.any = route
			case s.any.Binding != e.b:
				lost(s.any, 0)
			}
			continue
		}
		for _, o := range s.byMethod {
			if overlap := o.Methods & route.Methods; overlap != 0 {
				if o.Binding != e.b {
					lost(o, overlap)
				}
				route.Methods &^= overlap
			}
		}
		if route.Methods != 0 {
			s.byMethod = append(s.byMethod, route)
		}
	}
}
