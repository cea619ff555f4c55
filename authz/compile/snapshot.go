// Package compile turns the Portcullis objects (Credentials, CustomAuthorizers, APIBindings
// and their Secrets) into one immutable policy Snapshot, the only thing the request path
// reads. Build is pure: no client, no I/O, no goroutines, and its output depends only on its
// inputs. An invalid object never fails a build: it gets a False condition and is left out,
// and the routes of an invalid APIBinding deny instead of opening.
package compile

import (
	"crypto/sha256"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// Snapshot is an immutable, fully resolved policy. Readers share it freely; a change produces
// a new Snapshot that reuses every part the change did not touch.
type Snapshot struct {
	// Version increases by one with every build from the same lineage.
	Version uint64
	// BuiltAt is the Inputs.Now the snapshot was built with.
	BuiltAt time.Time

	hosts     pmap[string, *HostTable] // exact host names
	wildcards pmap[string, *HostTable] // "*.example.com" stored under "example.com"
	appKeys   claims[string]
	appCodes  claims[[sha256.Size]byte]

	st *state // what the next incremental build reuses
}

// ObjectRef identifies the object a compiled part comes from.
type ObjectRef struct {
	Namespace, Name string
	// Ref is "<namespace>/<name>" (for a credential, the value of x-portcullis-credential).
	Ref string
	UID types.UID
}

func refOf(o metav1.Object) ObjectRef {
	return ObjectRef{Namespace: o.GetNamespace(), Name: o.GetName(), Ref: o.GetNamespace() + "/" + o.GetName(), UID: o.GetUID()}
}

// Credential is a usable app identity: its Secret parsed, its appKey and AppCodes owned. It
// reads the rest (name, UID, labels, metadata, disabled, expiry, allowed CIDRs, appSecret,
// AppCodes) from the inputs of its object and its Secret rather than keeping copies: there
// are 100,000 of them in a large world, of 48 bytes each.
type Credential struct {
	// Ref is "<namespace>/<name>" (the value of x-portcullis-credential).
	Ref string
	// AppKey aliases the Secret's data.
	AppKey string

	secret *secretData // read-only
	obj    *credInput  // read-only
}

// NewCredential returns the compiled form of obj with the given appKey and appSecret, for
// tests and tools that need a credential without a build (a build also checks the Secret,
// parses allowedCIDRs and resolves who owns each appKey).
func NewCredential(obj *authv1alpha1.Credential, appKey string, secret []byte) *Credential {
	s := &corev1.Secret{Data: map[string][]byte{SecretKeyAppKey: []byte(appKey)}}
	if secret != nil {
		s.Data[SecretKeyAppSecret] = secret
	}
	return &Credential{Ref: obj.Namespace + "/" + obj.Name, AppKey: appKey, secret: newSecretData(s, 0), obj: newCredInput(obj, versionOf(obj))}
}

// Secret is the HMAC key for signed requests; nil when the Secret has no appSecret. It is a
// slice of the Secret's data: never modify it.
func (c *Credential) Secret() []byte {
	s, _ := c.secret.get(SecretKeyAppSecret)
	return s
}

// appendCodes appends the SHA-256 of each of its AppCodes to dst, in the order of its
// Secret, as the build that compiled it read them.
func (c *Credential) appendCodes(dst [][sha256.Size]byte) [][sha256.Size]byte {
	dst, _ = appCodes(c.secret, dst)
	return dst
}

// Name, UID and Metadata are those of the Credential object; the map is shared: never
// modify it. UID allocates the text of a UUID (see AppendUIDKey).
func (c *Credential) Name() string                { return c.key().Name }
func (c *Credential) UID() types.UID              { return c.obj.uid().text() }
func (c *Credential) Metadata() map[string]string { return c.obj.metadata }

// AppendUIDKey appends the UID to b in a form for keys (UID allocates its text): 0xff and
// the 16 bytes of a UUID, or 0x00, the length (4 bytes, big-endian) and the text of any other
// UID. It is never longer than 5 + len(UID()).
func (c *Credential) AppendUIDKey(b []byte) []byte { return c.obj.uid().appendKey(b) }

// UIDLen is the length of UID().
func (c *Credential) UIDLen() int { return c.obj.uid().textLen() }

// Disabled is spec.disabled.
func (c *Credential) Disabled() bool { return c.obj.disabled }

// ExpiresAt is spec.expiresAt; zero when it never expires.
func (c *Credential) ExpiresAt() time.Time {
	if c.obj.expires {
		return c.obj.expiresAt().time()
	}
	return time.Time{}
}

// Usable reports whether the credential may authenticate a request at now.
func (c *Credential) Usable(now time.Time) bool {
	return !c.obj.disabled && (!c.obj.expires || now.Before(c.obj.expiresAt().time()))
}

// SourceAllowed reports whether addr may present the credential.
func (c *Credential) SourceAllowed(addr netip.Addr) bool {
	cidrs := c.obj.allowedCIDRs()
	if cidrs == nil {
		return true
	}
	addr = addr.Unmap()
	for _, p := range cidrs.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// IdentitySource is one request value the authorizer receives and keys its cache on.
type IdentitySource struct {
	In authv1alpha1.IdentityLocation
	// Name is the header (lower-case), query parameter or cookie name.
	Name string
}

// Authorizer is a ready CustomAuthorizer.
type Authorizer struct {
	ObjectRef
	Generation int64
	// Revision changes whenever anything the answers depend on changes (the spec, or the
	// user data read from a Secret); cache entries are keyed on UID and Revision.
	Revision        uint64
	URL             *url.URL
	IdentitySources []IdentitySource
	TTL, DenyTTL    time.Duration
	MaxEntries      int
	Timeout         time.Duration
	SendBody        bool
	UserData        string
	ResponseFormat  authv1alpha1.ResponseFormat
	// FailOpen is failurePolicy: Allow.
	FailOpen bool
}

// ContextHeader maps an authorizer context key to an upstream header.
type ContextHeader struct{ Context, Header string }

// Binding is a compiled APIBinding.
type Binding struct {
	ObjectRef
	Generation int64
	// Invalid, when not empty, says why the binding is not ready; every request matching one
	// of its routes is denied (AUTHORIZER_CONF_FAILURE) with this message.
	Invalid   string
	Anonymous bool
	// App is the first factor; nil when not required.
	App *AppFactor
	// Authorizer is the second factor; nil when not required (or when Invalid).
	Authorizer *Authorizer
	// ContextHeaderPrefix and ContextHeaders map the authorizer context to upstream headers.
	ContextHeaderPrefix string
	ContextHeaders      []ContextHeader
	// StripHeaders and StripPrefixes are the incoming headers an allowed request loses before
	// it goes upstream, so a client cannot spoof what Portcullis asserts: the AppCode headers
	// and the mapped context headers; x-portcullis-* and the context prefix. They are the
	// same for every request of the binding, and shared: never modify them.
	StripHeaders, StripPrefixes []string
}

// Headers Portcullis reads from clients or asserts upstream.
const (
	HeaderAppCode     = "x-app-code"
	HeaderApigAppCode = "x-apig-appcode"
	PortcullisPrefix  = "x-portcullis-"
)

// AppFactor is which credentials a binding accepts and how they may be presented.
type AppFactor struct {
	Signature, AppCode   bool
	AllowUnsignedPayload bool
	names                []string        // sorted, without repeats
	selector             labels.Selector // nil: no selector
}

// named reports whether the factor names the credential called name. A sorted slice, not a
// map: 10,000 bindings each naming a few credentials would hold 10,000 maps of several
// hundred bytes.
func (f *AppFactor) named(name string) bool {
	_, ok := slices.BinarySearch(f.names, name)
	return ok
}

// Binds reports whether the binding b accepts credential c.
func (b *Binding) Binds(c *Credential) bool {
	return b.bindsObject(c.key(), c.obj)
}

// Namespace is the namespace of the Credential object.
func (c *Credential) Namespace() string { return c.key().Namespace }

// key is the namespace and name of the Credential object, the two parts of Ref.
func (c *Credential) key() nn {
	ns, name, _ := strings.Cut(c.Ref, "/")
	return nn{Namespace: ns, Name: name}
}

// Method is a bit set of HTTP methods.
type Method uint16

// Known methods; any other method only matches routes without a method list.
const (
	MethodGET Method = 1 << iota
	MethodHEAD
	MethodPOST
	MethodPUT
	MethodPATCH
	MethodDELETE
	MethodOPTIONS
	MethodCONNECT
	MethodTRACE
)

var methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// ParseMethod returns the bit of an upper-case method name, 0 for any other.
func ParseMethod(m string) Method {
	for i, n := range methodNames {
		if n == m {
			return 1 << i
		}
	}
	return 0
}

func (m Method) String() string {
	if m == 0 {
		return "*"
	}
	var parts []string
	for i, n := range methodNames {
		if m&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ",")
}

// Route is one route of a binding as it stands in a host's table.
type Route struct {
	Binding *Binding
	// Index is the position of the route in the binding's spec.routes.
	Index   int
	Path    string
	Match   authv1alpha1.PathMatchType
	Methods Method // 0: every method
}

// routeSet holds the routes claiming one path in one host's table.
type routeSet struct {
	byMethod []*Route // method-specific, disjoint method sets
	any      *Route   // no method list
}

func (s *routeSet) pick(m Method) *Route {
	if m != 0 {
		for _, r := range s.byMethod {
			if r.Methods&m != 0 {
				return r
			}
		}
	}
	return s.any
}

// pathIndex maps the paths of one host's routes to the routes claiming them, Exact and
// PathPrefix paths apart (a PathPrefix path has no trailing "/", but "/" itself). A host has
// a handful of paths, for which a Go map costs 256 bytes: up to smallPaths of them are a
// list, searched in order; beyond, two maps.
type pathIndex struct {
	few           []pathRoutes
	exact, prefix map[string]*routeSet // nil while few holds every path
}

// smallPaths is the most paths a pathIndex keeps in a list: a search of 8 compares no more
// than a map lookup costs.
const smallPaths = 8

type pathRoutes struct {
	path  string
	exact bool
	set   *routeSet
}

// get returns the routes claiming path (an Exact path or a PathPrefix one); nil if none do.
func (x *pathIndex) get(path string, exact bool) *routeSet {
	if x.prefix == nil {
		for i := range x.few {
			if e := &x.few[i]; e.exact == exact && e.path == path {
				return e.set
			}
		}
		return nil
	}
	if exact {
		return x.exact[path]
	}
	return x.prefix[path]
}

// add returns the routes claiming path, adding an empty set if none do; more is how many
// paths may follow, to size the list.
func (x *pathIndex) add(path string, exact bool, more int) *routeSet {
	if s := x.get(path, exact); s != nil {
		return s
	}
	s := &routeSet{}
	switch {
	case x.prefix != nil:
	case len(x.few) < smallPaths:
		if x.few == nil {
			x.few = make([]pathRoutes, 0, min(max(more, 1), smallPaths))
		}
		x.few = append(x.few, pathRoutes{path: path, exact: exact, set: s})
		return s
	default:
		x.exact, x.prefix = map[string]*routeSet{}, make(map[string]*routeSet, 2*smallPaths)
		for _, e := range x.few {
			x.set(e.path, e.exact, e.set)
		}
		x.few = nil
	}
	x.set(path, exact, s)
	return s
}

func (x *pathIndex) set(path string, exact bool, s *routeSet) {
	if exact {
		x.exact[path] = s
	} else {
		x.prefix[path] = s
	}
}

// each calls f for every Exact path (exact) or every PathPrefix path, in no order.
func (x *pathIndex) each(exact bool, f func(path string, s *routeSet)) {
	for _, e := range x.few {
		if e.exact == exact {
			f(e.path, e.set)
		}
	}
	m := x.prefix
	if exact {
		m = x.exact
	}
	for p, s := range m {
		f(p, s)
	}
}

// HostTable is the route table of one host name or wildcard.
type HostTable struct {
	Host  string
	paths pathIndex
	// conflicts lists, per binding, the claims it lost on this host to older bindings (nil
	// when none did).
	conflicts map[types.NamespacedName][]string
	bindings  []types.NamespacedName // the bindings naming this host, oldest first
}

// Host returns the table for a normalised (lower-case, no port, no trailing dot) host: the
// exact name if some binding names it, else the longest wildcard suffix, else nil. A wildcard
// never matches its own apex.
func (s *Snapshot) Host(host string) *HostTable {
	if t, ok := s.hosts.Get(host); ok {
		return t
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if t, ok := s.wildcards.Get(host[i+1:]); ok {
				return t
			}
		}
	}
	return nil
}

// Match returns the route for a normalised path and a method: an Exact route before a
// PathPrefix one, longer prefixes first (segment by segment), and at equal paths a route
// naming the method before one without a method list. It returns nil when no route matches.
func (t *HostTable) Match(path string, method Method) *Route {
	if s := t.paths.get(path, true); s != nil {
		if r := s.pick(method); r != nil {
			return r
		}
	}
	p := path
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	for {
		if s := t.paths.get(p, false); s != nil {
			if r := s.pick(method); r != nil {
				return r
			}
		}
		if p == "/" || p == "" {
			return nil
		}
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			p = "/"
		} else {
			p = p[:i]
		}
	}
}

// Lookup matches host and path in one call; see Host and Match.
func (s *Snapshot) Lookup(host, path string, method Method) *Route {
	if t := s.Host(host); t != nil {
		return t.Match(path, method)
	}
	return nil
}

// CredentialByAppKey returns the credential owning appKey.
func (s *Snapshot) CredentialByAppKey(appKey string) *Credential {
	return s.appKeys.owner(appKey)
}

// CredentialByAppCode returns the credential owning an AppCode, by the code's SHA-256.
func (s *Snapshot) CredentialByAppCode(digest [sha256.Size]byte) *Credential {
	return s.appCodes.owner(digest)
}

// owned is the entry of an appKey or an AppCode digest: the credential that may use it (nil
// when none may) and the credentials claiming it. Nearly every key is claimed by one
// credential, which owns it; then the claims are that credential and list is nil, with no
// allocation of its own (a list for each would cost 6 MB with 100,000 credentials), and the
// index keeps only cred (see claims).
type owned struct {
	cred *Credential
	list *[]nn // the claims, oldest first; nil when they are just cred
}

// claims returns the credentials claiming the key, oldest first. It allocates when list is
// nil: for an incremental build, not for a full one (see first).
func (o owned) claims() []nn {
	if o.list != nil {
		return *o.list
	}
	if o.cred != nil {
		return []nn{o.cred.key()}
	}
	return nil
}

// first returns the oldest credential claiming the key; ok is false when none does.
func (o owned) first() (k nn, ok bool) {
	switch {
	case o.list != nil:
		return (*o.list)[0], true
	case o.cred != nil:
		return o.cred.key(), true
	}
	return nn{}, false
}

// withClaims returns o claimed by claims (not empty, oldest first), in its compact form.
func (o owned) withClaims(claims []nn) owned {
	o.list = &claims
	return o.compact()
}

// withCred returns o with c as the credential that may use the key, in its compact form.
func (o owned) withCred(c *Credential) owned {
	if o.list == nil && o.cred != nil {
		o.list = &[]nn{o.cred.key()} // the claims no longer follow from cred
	}
	o.cred = c
	return o.compact()
}

// compact drops list when it says no more than cred does.
func (o owned) compact() owned {
	if o.list != nil && len(*o.list) == 1 && o.cred != nil && (*o.list)[0] == o.cred.key() {
		o.list = nil
	}
	return o
}
