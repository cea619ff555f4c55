package compile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unsafe"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// Secret keys of a credential Secret.
const (
	SecretKeyAppKey    = "appKey"
	SecretKeyAppSecret = "appSecret"
	SecretKeyAppCodes  = "appCodes"
)

// Limits of DESIGN.md §2, enforced again here because objects read from files never pass
// through the API server's validation.
const (
	minAppSecretLen   = 16
	maxAppCodes       = 5
	minAppCodeLen     = 32
	maxAppCodeLen     = 180
	maxUserDataLen    = 2048
	maxIdentitySource = 8
	maxHosts          = 16
	maxRoutes         = 64
	maxTTL            = time.Hour
	minTimeout        = 10 * time.Millisecond
	maxTimeout        = 30 * time.Second

	defaultTTL        = 30 * time.Second
	defaultTimeout    = 3 * time.Second
	defaultMaxEntries = 10000
)

func nnOf(o metav1.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
}

// older orders objects by age: creation time, then namespace and name. Older objects keep
// what they claim (an appKey, a route).
func older(a, b metav1.Object) bool {
	ta, tb := a.GetCreationTimestamp().Time, b.GetCreationTimestamp().Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	if a.GetNamespace() != b.GetNamespace() {
		return a.GetNamespace() < b.GetNamespace()
	}
	return a.GetName() < b.GetName()
}

func secretNotFound(ns, name string) string {
	return fmt.Sprintf("Secret %s/%s not found (it must exist and carry the label %s: \"true\")",
		ns, name, authv1alpha1.CredentialSecretLabel)
}

// parseCredential reads Credential k and its Secret. It returns the credential, the digests
// of its AppCodes, and a reason and message when the Secret is missing or invalid.
func parseCredential(k types.NamespacedName, obj *credInput, secret *secretData) (*Credential, [][sha256.Size]byte, string, string) {
	secretName := types.NamespacedName{Namespace: k.Namespace, Name: obj.secretName}
	if secret == nil {
		return nil, nil, authv1alpha1.ReasonSecretNotFound, secretNotFound(k.Namespace, obj.secretName)
	}
	invalid := func(format string, args ...any) (*Credential, [][sha256.Size]byte, string, string) {
		return nil, nil, authv1alpha1.ReasonSecretInvalid,
			fmt.Sprintf("Secret %s: ", secretName) + fmt.Sprintf(format, args...)
	}
	rawKey, _ := secret.get(SecretKeyAppKey)
	// The appKey aliases the Secret's data, which is never written (see secretData.get; the
	// appSecret is a slice of it too): 100,000 copies would cost 2–3 MB.
	appKey := unsafe.String(unsafe.SliceData(rawKey), len(rawKey))
	if appKey == "" {
		return invalid("key %s is missing or empty", SecretKeyAppKey)
	}
	if len(appKey) > 256 || strings.IndexFunc(appKey, func(r rune) bool { return r <= ' ' || r > '~' || r == ',' }) >= 0 {
		return invalid("%s must be at most 256 printable ASCII characters without spaces or commas (a trailing newline is a common cause)", SecretKeyAppKey)
	}
	c := &Credential{Ref: k.Namespace + "/" + k.Name, AppKey: appKey, secret: secret, obj: obj}
	if s, ok := secret.get(SecretKeyAppSecret); ok && len(s) < minAppSecretLen {
		return invalid("%s must be at least %d bytes, it has %d", SecretKeyAppSecret, minAppSecretLen, len(s))
	}
	codes, problem := appCodes(secret, nil)
	if problem != "" {
		return invalid("%s", problem)
	}
	if c.Secret() == nil && len(codes) == 0 {
		return invalid("it needs %s (for signed requests) or %s", SecretKeyAppSecret, SecretKeyAppCodes)
	}
	if s, bad := obj.badCIDR(); bad {
		return nil, nil, authv1alpha1.ReasonSecretInvalid, fmt.Sprintf("allowedCIDRs: %q is not a CIDR", s)
	}
	return c, codes, "", ""
}

// appCodes appends to dst the SHA-256 of each AppCode of a Secret's data, in order and
// without repeats, or returns why they are invalid. A compiled Credential keeps none of
// them: a build that needs them again reads them from the Secret's data (see
// Credential.appendCodes), which the Credential holds anyway.
func appCodes(secret *secretData, dst [][sha256.Size]byte) ([][sha256.Size]byte, string) {
	raw, ok := secret.get(SecretKeyAppCodes)
	if !ok {
		return dst, ""
	}
	first, n := len(dst), 0
	for len(raw) > 0 {
		var line []byte
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			line, raw = raw, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		n++
		if n > maxAppCodes {
			return dst, fmt.Sprintf("%s holds more than %d codes", SecretKeyAppCodes, maxAppCodes)
		}
		var d [sha256.Size]byte
		if h, ok := bytes.CutPrefix(line, []byte("sha256:")); ok {
			if len(h) != 2*sha256.Size {
				return dst, fmt.Sprintf("%s line %d: a hashed code is \"sha256:\" and 64 hex digits", SecretKeyAppCodes, n)
			}
			if _, err := hex.Decode(d[:], h); err != nil {
				return dst, fmt.Sprintf("%s line %d: a hashed code is \"sha256:\" and 64 hex digits", SecretKeyAppCodes, n)
			}
		} else {
			if len(line) < minAppCodeLen || len(line) > maxAppCodeLen {
				return dst, fmt.Sprintf("%s line %d: a code is %d..%d characters, it has %d", SecretKeyAppCodes, n, minAppCodeLen, maxAppCodeLen, len(line))
			}
			if bytes.IndexFunc(line, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
				return dst, fmt.Sprintf("%s line %d: a code is printable ASCII without spaces", SecretKeyAppCodes, n)
			}
			d = sha256.Sum256(line)
		}
		if !slices.Contains(dst[first:], d) {
			dst = append(dst, d)
		}
	}
	return dst, ""
}

// compileAuthorizer checks and compiles a CustomAuthorizer. On failure it returns the reason
// and message of its Ready=False condition.
func compileAuthorizer(obj *authv1alpha1.CustomAuthorizer, secrets *nsMap[*secretData]) (*Authorizer, string, string) {
	spec := &obj.Spec
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return nil, authv1alpha1.ReasonInvalidURL, fmt.Sprintf("url %q must be an absolute http or https URL with a host and no fragment", spec.URL)
	}
	a := &Authorizer{
		ObjectRef:      refOf(obj),
		Generation:     obj.Generation,
		URL:            u,
		TTL:            defaultTTL,
		MaxEntries:     defaultMaxEntries,
		Timeout:        defaultTimeout,
		SendBody:       spec.SendBody,
		UserData:       spec.UserData,
		ResponseFormat: spec.ResponseFormat,
		FailOpen:       spec.FailurePolicy == authv1alpha1.FailurePolicyAllow,
	}
	invalid := func(format string, args ...any) (*Authorizer, string, string) {
		return nil, authv1alpha1.ReasonInvalid, fmt.Sprintf(format, args...)
	}
	switch a.ResponseFormat {
	case "":
		a.ResponseFormat = authv1alpha1.ResponseFormatAPIG
	case authv1alpha1.ResponseFormatAPIG, authv1alpha1.ResponseFormatTencent, authv1alpha1.ResponseFormatMPaaS:
	default:
		return invalid("responseFormat %q is not APIG, Tencent or MPaaS", a.ResponseFormat)
	}
	switch spec.FailurePolicy {
	case "", authv1alpha1.FailurePolicyDeny, authv1alpha1.FailurePolicyAllow:
	default:
		return invalid("failurePolicy %q is not Deny or Allow", spec.FailurePolicy)
	}
	if n := len(spec.IdentitySources); n < 1 || n > maxIdentitySource {
		return invalid("identitySources must list 1..%d sources, it lists %d", maxIdentitySource, n)
	}
	for _, s := range spec.IdentitySources {
		src := IdentitySource{In: s.In, Name: s.Name}
		switch s.In {
		case authv1alpha1.IdentityHeader, authv1alpha1.IdentityCookie, authv1alpha1.IdentityQuery:
			if s.Name == "" {
				return invalid("identitySources: %s needs a name", s.In)
			}
			if s.In == authv1alpha1.IdentityHeader {
				src.Name = strings.ToLower(s.Name)
			}
		case authv1alpha1.IdentityMethod, authv1alpha1.IdentityPath:
			if s.Name != "" {
				return invalid("identitySources: %s takes no name", s.In)
			}
		default:
			return invalid("identitySources: %q is not Header, Query, Cookie, Method or Path", s.In)
		}
		for _, o := range a.IdentitySources {
			if o.In == src.In && (o.Name == src.Name || (src.In == authv1alpha1.IdentityCookie && strings.EqualFold(o.Name, src.Name))) {
				return invalid("identitySources: %s %q is listed twice", src.In, src.Name)
			}
		}
		a.IdentitySources = append(a.IdentitySources, src)
	}
	if c := spec.Cache; c != nil {
		if c.TTL != nil {
			a.TTL = c.TTL.Duration
		}
		if c.DenyTTL != nil {
			a.DenyTTL = c.DenyTTL.Duration
		}
		if c.MaxEntries != nil {
			a.MaxEntries = int(*c.MaxEntries)
		}
	}
	if a.TTL < 0 || a.TTL > maxTTL {
		return invalid("cache.ttl must be between 0s and 3600s, it is %s", a.TTL)
	}
	if a.DenyTTL < 0 || a.DenyTTL > a.TTL {
		return invalid("cache.denyTTL must be between 0s and ttl (%s), it is %s", a.TTL, a.DenyTTL)
	}
	if a.MaxEntries < 1 {
		return invalid("cache.maxEntries must be at least 1")
	}
	if spec.Timeout != nil {
		a.Timeout = spec.Timeout.Duration
	}
	if a.Timeout < minTimeout || a.Timeout > maxTimeout {
		return invalid("timeout must be between 10ms and 30s, it is %s", a.Timeout)
	}
	if spec.UserData != "" && spec.UserDataFrom != nil {
		return invalid("set userData or userDataFrom, not both")
	}
	if from := spec.UserDataFrom; from != nil {
		ref := from.SecretKeyRef
		s := secrets.get(types.NamespacedName{Namespace: obj.Namespace, Name: ref.Name})
		if s == nil {
			return nil, authv1alpha1.ReasonSecretNotFound, "userDataFrom: " + secretNotFound(obj.Namespace, ref.Name)
		}
		v, ok := s.get(ref.Key)
		if !ok {
			return nil, authv1alpha1.ReasonSecretNotFound, fmt.Sprintf("userDataFrom: Secret %s/%s has no key %q", obj.Namespace, ref.Name, ref.Key)
		}
		a.UserData = string(v)
	}
	if len(a.UserData) > maxUserDataLen {
		return invalid("user data is %d characters, at most %d are allowed", len(a.UserData), maxUserDataLen)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%s|%v|%d|%d|%d|%d|%t|%s|%t|%q", a.UID, a.Generation, a.URL, a.IdentitySources,
		a.TTL, a.DenyTTL, a.MaxEntries, a.Timeout, a.SendBody, a.ResponseFormat, a.FailOpen, a.UserData)
	a.Revision = h.Sum64()
	return a, authv1alpha1.ReasonValid, ""
}

var (
	headerRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	contextRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)
)

// validHost reports whether h (253 characters at most) is a lower-case DNS name, or "*." and
// one: labels of 1..63 characters from a-z, 0-9 and "-", not starting or ending with "-".
// (The same rule as the CRD's pattern, without a regular expression: a full build checks
// tens of thousands of hosts.)
func validHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	h, _ = strings.CutPrefix(h, "*.")
	if h == "" {
		return false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		label := h[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// routePathChar holds the characters a canonical route path may contain besides "/":
// unreserved characters, sub-delimiters, ":" and "@".
var routePathChar = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@") {
		t[c] = true
	}
	return t
}()

// CanonicalRoutePath reports whether p is a route path in canonical form: it starts with "/",
// has no empty, "." or ".." segment, and holds no percent-encoding, query, fragment,
// backslash or space.
func CanonicalRoutePath(p string) bool {
	if len(p) == 0 || len(p) > 1024 || p[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !routePathChar[p[i]] {
				return false
			}
			continue
		}
		seg := p[start:i]
		if seg == "." || seg == ".." || (seg == "" && i < len(p)) {
			return false
		}
		start = i + 1
	}
	return true
}

// validateBinding repeats the object-local rules of the APIBinding CRD.
func validateBinding(spec *authv1alpha1.APIBindingSpec) string {
	if n := len(spec.Hosts); n < 1 || n > maxHosts {
		return fmt.Sprintf("hosts must list 1..%d names, it lists %d", maxHosts, n)
	}
	for _, h := range spec.Hosts {
		if !validHost(h) {
			return fmt.Sprintf("host %q is not a lower-case DNS name or *. wildcard", h)
		}
	}
	if n := len(spec.Routes); n < 1 || n > maxRoutes {
		return fmt.Sprintf("routes must list 1..%d routes, it lists %d", maxRoutes, n)
	}
	for _, r := range spec.Routes {
		if !CanonicalRoutePath(r.Path) {
			return fmt.Sprintf("route path %q is not canonical (it starts with '/', has no empty, '.' or '..' segments and no '%%', '?', '#', '\\' or spaces)", r.Path)
		}
		switch r.Match {
		case "", authv1alpha1.PathMatchExact, authv1alpha1.PathMatchPrefix:
		default:
			return fmt.Sprintf("route %s: match %q is not Exact or PathPrefix", r.Path, r.Match)
		}
		for _, m := range r.Methods {
			if ParseMethod(string(m)) == 0 {
				return fmt.Sprintf("route %s: method %q is not an upper-case HTTP method", r.Path, m)
			}
		}
	}
	factors := spec.App != nil || spec.CustomAuthorizer != nil
	if !factors && !spec.Anonymous {
		return "set app and/or customAuthorizer, or anonymous: true for a public route"
	}
	if factors && spec.Anonymous {
		return "anonymous: true cannot be combined with app or customAuthorizer"
	}
	if app := spec.App; app != nil {
		if len(app.Credentials) == 0 && app.CredentialSelector == nil {
			return "app needs credentials or a credentialSelector"
		}
		if slices.Contains(app.Credentials, "") {
			return "app.credentials: a credential name is empty"
		}
		for _, m := range app.Methods {
			if m != authv1alpha1.AppAuthSignature && m != authv1alpha1.AppAuthAppCode {
				return fmt.Sprintf("app.methods: %q is not Signature or AppCode", m)
			}
		}
	}
	if up := spec.Upstream; up != nil {
		if up.ContextHeaderPrefix != "" && (!headerRE.MatchString(up.ContextHeaderPrefix) || strings.HasPrefix(up.ContextHeaderPrefix, PortcullisPrefix)) {
			return fmt.Sprintf("upstream.contextHeaderPrefix %q must be a lower-case header name prefix not starting with x-portcullis-", up.ContextHeaderPrefix)
		}
		for i, ch := range up.ContextHeaders {
			if slices.ContainsFunc(up.ContextHeaders[:i], func(o authv1alpha1.ContextHeader) bool { return o.Header == ch.Header }) {
				return fmt.Sprintf("upstream.contextHeaders: header %q is named twice", ch.Header)
			}
			if !contextRE.MatchString(ch.Context) {
				return fmt.Sprintf("upstream.contextHeaders: context key %q is invalid", ch.Context)
			}
			if !headerRE.MatchString(ch.Header) || strings.HasPrefix(ch.Header, PortcullisPrefix) || reservedHeader(ch.Header) {
				return fmt.Sprintf("upstream.contextHeaders: header %q is not allowed", ch.Header)
			}
		}
	}
	return ""
}

func reservedHeader(h string) bool {
	switch h {
	case "host", "authorization", "content-length", "transfer-encoding", "connection", "te", "upgrade", HeaderAppCode, HeaderApigAppCode:
		return true
	}
	return false
}

// routeKey is the path under which a route is stored in a host table.
func routeKey(r *authv1alpha1.Route) (string, authv1alpha1.PathMatchType) {
	m := r.Match
	if m == "" {
		m = authv1alpha1.PathMatchPrefix
	}
	p := r.Path
	if m == authv1alpha1.PathMatchPrefix && len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	return p, m
}

func methodsOf(ms []authv1alpha1.HTTPMethod) Method {
	var m Method
	for _, x := range ms {
		m |= ParseMethod(string(x))
	}
	return m
}
