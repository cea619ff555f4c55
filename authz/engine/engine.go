// Package engine decides requests: Decide normalises one request, matches it against the
// published policy snapshot, checks the app credential (factor 1) and asks the custom
// authorizer (factor 2), and says allow or deny with the error code of DESIGN.md §3.
// Front-ends convert their wire format into a Request and the Decision back; they hold no
// policy logic.
package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/signing"
)

// Request is the small view of a request every front-end produces.
type Request struct {
	Method string
	// Authority is the Host / :authority as received (port and case included).
	Authority string
	// Target is the path with its query, as received (":path").
	Target string
	// Headers have lower-case names, in the order received; a name may repeat.
	Headers []Header
	// Body is the request body if the proxy sent it; BodyKnown says whether it did.
	Body      []byte
	BodyKnown bool
	// Source is the client address the front-end trusts (for allowedCIDRs).
	Source netip.Addr
}

// Header returns the value of the header name (lower-case), repeated values joined with ","
// as HTTP allows; ok is false when it is absent.
func (r *Request) Header(name string) (string, bool) {
	var v string
	n := 0
	for i := range r.Headers {
		if r.Headers[i].Name == name {
			if n == 0 {
				v = r.Headers[i].Value
			} else {
				v += "," + r.Headers[i].Value
			}
			n++
		}
	}
	return v, n > 0
}

func (r *Request) count(name string) int {
	n := 0
	for i := range r.Headers {
		if r.Headers[i].Name == name {
			n++
		}
	}
	return n
}

// SecondFactor answers the custom-authorizer question; *authorizer.Client is one.
type SecondFactor interface {
	Authorize(ctx context.Context, c authorizer.Call) (authorizer.Result, error)
}

// Engine decides requests against the snapshot its Snapshot function returns.
type Engine struct {
	// Snapshot returns the policy in force (nil before the first build: NOT_READY).
	Snapshot func() *compile.Snapshot
	// Authorizer answers factor 2.
	Authorizer SecondFactor
	// MaxClockSkew bounds X-Sdk-Date against Now (default 15m).
	MaxClockSkew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxBodyBytes, when positive, cuts the body sent to an authorizer with sendBody.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the request's header names and values added up, and MaxHeaders
	// how many there are; a request over either is refused with 400
	// REQUEST_PARAMETERS_FAILURE. Zero means DefaultMaxHeaderBytes / DefaultMaxHeaders, a
	// negative value no limit.
	MaxHeaderBytes int
	MaxHeaders     int
}

// Default header limits: above what Envoy (60 KiB, 100 headers) and nginx (8 KiB lines) pass
// by default, below the HTTP server's own 1 MiB (which answers 431 without a JSON body).
const (
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxHeaders     = 256
)

// Header names Portcullis reads or owns.
const (
	headerAuthorization = "authorization"
	headerAppCode       = compile.HeaderAppCode
	headerApigAppCode   = compile.HeaderApigAppCode
	headerRequestID     = "x-request-id"
	headerSdkDate       = "x-sdk-date"

	HeaderCredential = "x-portcullis-credential"
	HeaderAppKey     = "x-portcullis-app-key"
	HeaderDegraded   = "x-portcullis-degraded"
	HeaderError      = "x-portcullis-error"
	portcullisPrefix = compile.PortcullisPrefix
)

// Messages: fixed, safe to show a client. Unknown keys and bad signatures share one.
const (
	msgNotReady       = "the authorization service has no policy yet"
	msgNoRoute        = "no API is configured for this host and path"
	msgNoCredential   = "this API needs an app credential: a signed request (Authorization: SDK-HMAC-SHA256 ...) or an AppCode (X-App-Code)"
	msgBadCredential  = "incorrect app authentication information"
	msgNotBound       = "the credential is not allowed to call this API"
	msgSourceDenied   = "the credential may not be used from this address"
	msgAccessDenied   = "the custom authorizer denied the request"
	msgCancelled      = "the request was cancelled before it was decided"
	msgRepeatedHeader = "the request repeats or mixes credential headers"
)

// maxAppCodeLen is the longest AppCode a Secret may hold (DESIGN.md §2); a longer one
// cannot match and is not hashed.
const maxAppCodeLen = 180

var dummySecret = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

// Decide answers one request. It never panics on input and every error path denies.
func (e *Engine) Decide(ctx context.Context, r *Request) Decision {
	d := Decision{RequestID: requestID(r)}
	if msg := e.checkHeaders(r); msg != "" {
		return deny(d, CodeRequestParametersFailure, msg)
	}
	if !validMethod(r.Method) {
		return deny(d, CodeRequestParametersFailure, "the method is not an HTTP token")
	}
	s := e.Snapshot()
	if s == nil {
		return deny(d, CodeNotReady, msgNotReady)
	}
	host, err := NormalizeHost(r.Authority)
	if err != nil {
		return deny(d, CodeRequestParametersFailure, err.Error())
	}
	rawPath, rawQuery := SplitPath(r.Target)
	path, err := NormalizePath(rawPath)
	if err != nil {
		return deny(d, CodeRequestParametersFailure, err.Error())
	}
	route := s.Lookup(host, path, compile.ParseMethod(r.Method))
	if route == nil {
		return deny(d, CodeRouteNotFound, msgNoRoute)
	}
	d.Route = route
	b := route.Binding
	if b.Invalid != "" {
		return deny(d, CodeAuthorizerConfFailure, "the API's configuration is not ready: "+b.Invalid)
	}
	if !b.Anonymous && b.App == nil && b.Authorizer == nil {
		// The compiler never produces this; should it ever, the route stays closed.
		return deny(d, CodeAuthorizerConfFailure, "the API requires no factor and is not marked anonymous")
	}
	d.App, d.Custom = FactorNotRequired, FactorNotRequired
	if b.App != nil {
		d.App, d.Custom = FactorFailed, FactorNotEvaluated
		if b.Authorizer == nil {
			d.Custom = FactorNotRequired
		}
		code, msg := e.firstFactor(s, r, rawPath, rawQuery, b, &d)
		if code != CodeNone {
			return deny(d, code, msg)
		}
		d.App = FactorPassed
	}
	var ctxKVs []authorizer.KV
	if b.Authorizer != nil {
		d.Custom = FactorFailed
		ids, ok := identities(b.Authorizer, r, path, rawQuery)
		if !ok {
			return deny(d, CodeAuthorizerIdentitiesFailure, "a required identity source is missing or empty")
		}
		body := r.Body
		if e.MaxBodyBytes > 0 && int64(len(body)) > e.MaxBodyBytes {
			body = body[:e.MaxBodyBytes]
		}
		start := time.Now()
		res, err := e.Authorizer.Authorize(ctx, authorizer.Call{
			Authorizer: b.Authorizer, Binding: b, Credential: d.Credential, Identity: ids,
			Method: r.Method, Path: path, Body: body, RequestID: d.RequestID, Source: r.Source,
		})
		d.AuthorizerTime = time.Since(start)
		if err != nil {
			var ae *authorizer.Error
			if errors.As(err, &ae) {
				return deny(d, CodeAuthorizerFailure, "custom authorizer failure: "+ae.Error())
			}
			return deny(d, CodeAuthorizerFailure, "custom authorizer failure")
		}
		d.Cached = res.Cached
		if !res.Allow {
			return deny(d, CodeAccessDenied, msgAccessDenied)
		}
		d.Custom, d.Degraded = FactorPassed, res.Degraded
		ctxKVs = res.Context
	}
	if ctx.Err() != nil {
		return deny(d, CodeAuthorizerFailure, msgCancelled)
	}
	upstream(&d, b, ctxKVs)
	return d
}

// Deny is the decision for a request a front-end refuses before the engine sees it (with the
// request id the engine would have given it).
func Deny(r *Request, c Code, msg string) Decision {
	return deny(Decision{RequestID: requestID(r)}, c, msg)
}

func deny(d Decision, c Code, msg string) Decision {
	d.Code, d.Message = c, msg
	return d
}

// firstFactor checks the app credential; it sets d.Credential when one is identified.
func (e *Engine) firstFactor(s *compile.Snapshot, r *Request, rawPath, rawQuery string, b *compile.Binding, d *Decision) (Code, string) {
	var authz string
	nAuth := 0
	for i := range r.Headers {
		if r.Headers[i].Name == headerAuthorization && hasSchemePrefix(r.Headers[i].Value) {
			authz = r.Headers[i].Value
			nAuth++
		}
	}
	nCode := r.count(headerAppCode) + r.count(headerApigAppCode)
	switch {
	case nAuth > 1 || nCode > 1 || (nAuth == 1 && nCode == 1):
		return CodeRequestParametersFailure, msgRepeatedHeader
	case nAuth == 0 && nCode == 0:
		return CodeAuthHeaderMissing, msgNoCredential
	}
	now := e.now()
	var cred *compile.Credential
	if nAuth == 1 {
		if !b.App.Signature {
			return CodeAuthFailure, "signed requests are not accepted by this API; use an AppCode"
		}
		auth, err := signing.ParseAuthorization(authz)
		if err != nil {
			return CodeAuthFailure, msgBadCredential + ": " + err.Error()
		}
		cred = s.CredentialByAppKey(auth.AppKey)
		var secret []byte
		if cred != nil {
			secret = cred.Secret()
		}
		known := secret != nil
		if !known {
			secret = dummySecret // an unknown key takes the same path as a wrong signature
		}
		err = signing.Verify(secret, signing.Request{
			Method: r.Method, Path: rawPath, Query: rawQuery, Host: r.Authority,
			Header: r.Header, Body: r.Body, BodyKnown: r.BodyKnown,
		}, auth, signing.VerifyOptions{Now: now, MaxClockSkew: e.MaxClockSkew, AllowUnsignedPayload: b.App.AllowUnsignedPayload})
		if err != nil || !known {
			if err != nil && !errors.Is(err, signing.ErrSignatureMismatch) {
				return CodeAuthFailure, msgBadCredential + ": " + err.Error()
			}
			return CodeAuthFailure, msgBadCredential
		}
	} else {
		if !b.App.AppCode {
			return CodeAuthFailure, "AppCodes are not accepted by this API; sign the request"
		}
		code, _ := r.Header(headerAppCode)
		if code == "" {
			code, _ = r.Header(headerApigAppCode)
		}
		if len(code) > maxAppCodeLen {
			return CodeAuthFailure, msgBadCredential
		}
		var buf [maxAppCodeLen]byte
		cred = s.CredentialByAppCode(sha256.Sum256(append(buf[:0], code...)))
		if cred == nil {
			return CodeAuthFailure, msgBadCredential
		}
	}
	d.Credential = cred
	if !cred.Usable(now) {
		return CodeAuthFailure, msgBadCredential
	}
	if !b.Binds(cred) {
		return CodeUnauthorized, msgNotBound
	}
	if !cred.SourceAllowed(r.Source) {
		return CodeUnauthorized, msgSourceDenied
	}
	return CodeNone, ""
}

// checkHeaders applies MaxHeaders and MaxHeaderBytes; it returns why the request is refused,
// or "".
func (e *Engine) checkHeaders(r *Request) string {
	maxN, maxBytes := e.MaxHeaders, e.MaxHeaderBytes
	if maxN == 0 {
		maxN = DefaultMaxHeaders
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxHeaderBytes
	}
	if maxN > 0 && len(r.Headers) > maxN {
		return "the request has more than " + strconv.Itoa(maxN) + " headers"
	}
	if maxBytes > 0 {
		n := 0
		for i := range r.Headers {
			n += len(r.Headers[i].Name) + len(r.Headers[i].Value)
		}
		if n > maxBytes {
			return "the request headers exceed " + strconv.Itoa(maxBytes) + " bytes"
		}
	}
	return ""
}

// validMethod reports whether m is an HTTP method token (RFC 9110 §5.6.2); an empty or
// hostile method is refused, never matched against the routes without a method list.
func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func hasSchemePrefix(v string) bool {
	return len(v) >= len(signing.Algorithm) && strings.EqualFold(v[:len(signing.Algorithm)], signing.Algorithm)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// identities reads the authorizer's identity sources from the request; ok is false when
// one is missing or empty.
func identities(a *compile.Authorizer, r *Request, path, rawQuery string) ([]string, bool) {
	ids := make([]string, len(a.IdentitySources))
	for i, src := range a.IdentitySources {
		var v string
		switch src.In {
		case "Header":
			v, _ = r.Header(src.Name)
		case "Query":
			v = queryValue(rawQuery, src.Name)
		case "Cookie":
			v = cookieValue(r, src.Name)
		case "Method":
			v = r.Method
		case "Path":
			v = path
		}
		if v == "" {
			return nil, false
		}
		ids[i] = v
	}
	return ids, true
}

// queryValue returns the first value of key in a raw query, decoded; "" when absent or
// not decodable.
func queryValue(q, key string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == key || (strings.ContainsAny(k, "%+") && unescapeQuery(k) == key) {
			return unescapeQuery(v)
		}
	}
	return ""
}

func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s):
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return ""
			}
			b = append(b, h<<4|l)
			i += 2
		case c == '%':
			return ""
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// cookieValue returns the value of the cookie named name ("" when absent).
func cookieValue(r *Request, name string) string {
	for i := range r.Headers {
		if r.Headers[i].Name != "cookie" {
			continue
		}
		for part := range strings.SplitSeq(r.Headers[i].Value, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// upstream fills the headers an allowed request carries upstream, and the incoming ones to
// strip so a client cannot spoof them.
func upstream(d *Decision, b *compile.Binding, kvs []authorizer.KV) {
	d.Upstream = make([]Header, 0, 3+len(kvs)*(1+len(b.ContextHeaders)))
	d.Remove, d.RemovePrefixes = b.StripHeaders, b.StripPrefixes
	if c := d.Credential; c != nil {
		d.Upstream = append(d.Upstream, Header{HeaderCredential, c.Ref}, Header{HeaderAppKey, c.AppKey})
	}
	if d.Degraded {
		d.Upstream = append(d.Upstream, Header{HeaderDegraded, "true"})
	}
	for _, kv := range kvs {
		if b.ContextHeaderPrefix != "" {
			name := b.ContextHeaderPrefix + strings.ToLower(kv.Key)
			if !protectedHeader(name) {
				d.Upstream = append(d.Upstream, Header{name, kv.Value})
			}
		}
		for _, m := range b.ContextHeaders {
			if m.Context == kv.Key {
				d.Upstream = append(d.Upstream, Header{m.Header, kv.Value})
			}
		}
	}
}

// protectedHeader reports the names a context key must never produce, whatever the prefix.
func protectedHeader(name string) bool {
	switch name {
	case "host", "authorization", "content-length", "transfer-encoding", "connection", "te", "upgrade",
		headerAppCode, headerApigAppCode, headerRequestID:
		return true
	}
	return strings.HasPrefix(name, portcullisPrefix) || strings.HasPrefix(name, ":")
}

var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// requestID is the proxy's x-request-id when it sent one, else a process-unique id.
func requestID(r *Request) string {
	if v, ok := r.Header(headerRequestID); ok && v != "" && len(v) <= 128 {
		return v
	}
	return idPrefix + "-" + strconv.FormatUint(idCounter.Add(1), 16)
}
