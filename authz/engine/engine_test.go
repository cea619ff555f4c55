package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/signing"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func world(t testing.TB) *compile.Snapshot { return enginetest.World(t, "", now) }

// fakeAuthorizer answers factor 2 the way a test says, and counts calls.
type fakeAuthorizer struct {
	res   authorizer.Result
	err   error
	calls atomic.Int32
	last  authorizer.Call
}

func (f *fakeAuthorizer) Authorize(_ context.Context, c authorizer.Call) (authorizer.Result, error) {
	f.calls.Add(1)
	f.last = c
	return f.res, f.err
}

func allowWith(kv ...string) *fakeAuthorizer {
	r := authorizer.Result{Allow: true}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Context = append(r.Context, authorizer.KV{Key: kv[i], Value: kv[i+1]})
	}
	return &fakeAuthorizer{res: r}
}

func hdr(kv ...string) []engine.Header {
	var h []engine.Header
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, engine.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

// signed returns the headers of a request signed with the mobile-app key (or another).
func signed(t testing.TB, method, target, appKey, secret string, date time.Time, extra ...string) []engine.Header {
	t.Helper()
	path, query := engine.SplitPath(target)
	h := map[string]string{"x-sdk-date": date.UTC().Format(signing.DateFormat), "host": "api.example.com"}
	names := []string{"host", "x-sdk-date"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
		names = append(names, extra[i])
	}
	slices.Sort(names)
	auth, err := signing.Sign([]byte(secret), appKey, signing.Request{
		Method: method, Path: path, Query: query, Host: "api.example.com",
		Header: func(n string) (string, bool) { v, ok := h[n]; return v, ok }, BodyKnown: true,
	}, names)
	if err != nil {
		t.Fatal(err)
	}
	out := hdr("authorization", auth, "x-sdk-date", h["x-sdk-date"])
	for i := 0; i+1 < len(extra); i += 2 {
		out = append(out, engine.Header{Name: extra[i], Value: extra[i+1]})
	}
	return out
}

const (
	goodCode   = "APPCODE-0001-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	otherCode  = "APPCODE-OTHER-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	officeCode = "APPCODE-OFFICE-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
	offCode    = "APPCODE-OFF-DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD"
	secret     = "app-secret-0001-0123456789"
	identity   = "?test=demo"
)

func TestDecide(t *testing.T) {
	snap := world(t)
	tokenH := []string{"token", "t0k"}
	tests := []struct {
		name     string
		nilSnap  bool
		req      engine.Request
		authz    *fakeAuthorizer
		want     engine.Code
		wantMsg  string // substring of the message
		calls    int32  // authorizer calls expected
		cached   bool   // the authorizer's answer came from its cache
		upstream []engine.Header
	}{
		{name: "cold start", nilSnap: true, req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/healthz"}, want: engine.CodeNotReady},
		{name: "bad host", req: engine.Request{Method: "GET", Authority: "api example.com", Target: "/healthz"}, want: engine.CodeRequestParametersFailure},
		{name: "double slash", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "//healthz"}, want: engine.CodeRequestParametersFailure},
		{name: "encoded slash", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders%2F7"}, want: engine.CodeRequestParametersFailure},
		{name: "dot-dot", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/healthz/../orders"}, want: engine.CodeRequestParametersFailure},
		{name: "unknown host", req: engine.Request{Method: "GET", Authority: "other.example.com", Target: "/healthz"}, want: engine.CodeRouteNotFound},
		{name: "unknown path", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/nope"}, want: engine.CodeRouteNotFound},
		{name: "method not routed", req: engine.Request{Method: "DELETE", Authority: "api.example.com", Target: "/orders"}, want: engine.CodeRouteNotFound},
		{name: "anonymous", req: engine.Request{Method: "GET", Authority: "API.example.com:443", Target: "/healthz?x=1"}, want: engine.CodeNone},
		{name: "binding not ready", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/broken"}, want: engine.CodeAuthorizerConfFailure, wantMsg: "does-not-exist"},

		{name: "no credential", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog"}, want: engine.CodeAuthHeaderMissing},
		{name: "a bearer token is no credential", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("authorization", "Bearer x")}, want: engine.CodeAuthHeaderMissing},
		{name: "AppCode", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", goodCode)}, want: engine.CodeNone,
			upstream: hdr(engine.HeaderCredential, "shop/mobile-app", engine.HeaderAppKey, "app-key-0001")},
		{name: "AppCode alias", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-apig-appcode", goodCode)}, want: engine.CodeNone},
		{name: "wrong AppCode", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", goodCode+"x")}, want: engine.CodeAuthFailure, wantMsg: "incorrect app authentication information"},
		{name: "AppCode twice", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", goodCode, "x-app-code", goodCode)}, want: engine.CodeRequestParametersFailure},
		{name: "AppCode and alias", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", goodCode, "x-apig-appcode", otherCode)}, want: engine.CodeRequestParametersFailure},
		{name: "AppCode where only signatures count", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments", Headers: hdr("x-app-code", goodCode)}, want: engine.CodeAuthFailure},
		{name: "valid but not bound", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", otherCode)}, want: engine.CodeUnauthorized},
		{name: "source address not allowed", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", officeCode), Source: netip.MustParseAddr("192.0.2.1")}, want: engine.CodeUnauthorized},
		{name: "source address allowed", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: hdr("x-app-code", officeCode), Source: netip.MustParseAddr("10.1.2.3")}, want: engine.CodeNone},
		{name: "disabled credential", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders" + identity, Headers: append(hdr("x-app-code", offCode), hdr(tokenH...)...)}, authz: allowWith(), want: engine.CodeAuthFailure},

		{name: "signed", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments/7?b=2&a=1", Headers: signed(t, "GET", "/payments/7?b=2&a=1", "app-key-0001", secret, now)}, want: engine.CodeNone},
		{name: "bad signature", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments/7", Headers: signed(t, "GET", "/payments/7", "app-key-0001", "wrong-secret-0123456789", now)}, want: engine.CodeAuthFailure, wantMsg: "incorrect app authentication information"},
		{name: "unknown key", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments/7", Headers: signed(t, "GET", "/payments/7", "nobody", secret, now)}, want: engine.CodeAuthFailure, wantMsg: "incorrect app authentication information"},
		{name: "signed for another path", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments/8", Headers: signed(t, "GET", "/payments/7", "app-key-0001", secret, now)}, want: engine.CodeAuthFailure},
		{name: "stale date", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments/7", Headers: signed(t, "GET", "/payments/7", "app-key-0001", secret, now.Add(-time.Hour))}, want: engine.CodeAuthFailure},
		{name: "signature and AppCode", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/payments/7", Headers: append(signed(t, "GET", "/payments/7", "app-key-0001", secret, now), hdr("x-app-code", goodCode)...)}, want: engine.CodeRequestParametersFailure},

		{name: "two factors", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders/7" + identity, Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: allowWith("user", "u-42", "Plan", "pro"), want: engine.CodeNone, calls: 1,
			upstream: hdr(engine.HeaderCredential, "shop/mobile-app", engine.HeaderAppKey, "app-key-0001", "x-auth-plan", "pro", "x-auth-user", "u-42", "x-user-id", "u-42")},
		{name: "factor 2 not asked when factor 1 fails", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders" + identity, Headers: append(hdr("x-app-code", otherCode), hdr(tokenH...)...)},
			authz: allowWith(), want: engine.CodeUnauthorized, calls: 0},
		{name: "identity missing", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders", Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: allowWith(), want: engine.CodeAuthorizerIdentitiesFailure, calls: 0},
		{name: "identity empty", req: engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders?test=", Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: allowWith(), want: engine.CodeAuthorizerIdentitiesFailure, calls: 0},
		{name: "authorizer denies", req: engine.Request{Method: "POST", Authority: "api.example.com", Target: "/orders" + identity, Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: &fakeAuthorizer{}, want: engine.CodeAccessDenied, calls: 1},
		{name: "cached deny", req: engine.Request{Method: "POST", Authority: "api.example.com", Target: "/orders" + identity, Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: &fakeAuthorizer{res: authorizer.Result{Cached: true}}, want: engine.CodeAccessDenied, calls: 1, cached: true},
		{name: "authorizer fails", req: engine.Request{Method: "POST", Authority: "api.example.com", Target: "/orders" + identity, Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: &fakeAuthorizer{err: &authorizer.Error{Reason: "timeout", Err: errors.New("timeout after 3s")}}, want: engine.CodeAuthorizerFailure, calls: 1},
		{name: "authorizer down, failure policy Allow", req: engine.Request{Method: "POST", Authority: "api.example.com", Target: "/orders" + identity, Headers: append(hdr("x-app-code", goodCode), hdr(tokenH...)...)},
			authz: &fakeAuthorizer{res: authorizer.Result{Allow: true, Degraded: true}}, want: engine.CodeNone, calls: 1,
			upstream: hdr(engine.HeaderCredential, "shop/mobile-app", engine.HeaderAppKey, "app-key-0001", engine.HeaderDegraded, "true")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := tt.authz
			if fa == nil {
				fa = allowWith()
			}
			e := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: fa, Now: func() time.Time { return now }}
			if tt.nilSnap {
				e.Snapshot = func() *compile.Snapshot { return nil }
			}
			d := e.Decide(context.Background(), &tt.req)
			if d.Code != tt.want {
				t.Fatalf("code %s (%d: %s), want %s", d.Code, d.Status(), d.Message, tt.want)
			}
			if tt.wantMsg != "" && !strings.Contains(d.Message, tt.wantMsg) {
				t.Errorf("message %q does not say %q", d.Message, tt.wantMsg)
			}
			if d.Cached != tt.cached {
				t.Errorf("Cached = %t, want %t", d.Cached, tt.cached)
			}
			if got := fa.calls.Load(); got != tt.calls {
				t.Errorf("authorizer called %d times, want %d", got, tt.calls)
			}
			if tt.upstream != nil {
				got := slices.Clone(d.Upstream)
				slices.SortFunc(got, func(a, b engine.Header) int { return strings.Compare(a.Name, b.Name) })
				want := slices.Clone(tt.upstream)
				slices.SortFunc(want, func(a, b engine.Header) int { return strings.Compare(a.Name, b.Name) })
				if !slices.Equal(got, want) {
					t.Errorf("upstream headers\n got %v\nwant %v", got, want)
				}
			}
			if d.Allowed() {
				if !slices.Contains(d.RemovePrefixes, "x-portcullis-") || !slices.Contains(d.Remove, "x-app-code") || !slices.Contains(d.Remove, "x-apig-appcode") {
					t.Errorf("an allow must strip x-portcullis-* and the AppCode headers: %v %v", d.Remove, d.RemovePrefixes)
				}
			} else {
				body := string(d.Body())
				if !strings.Contains(body, `"error_code":"`+tt.want.String()+`"`) || !strings.Contains(body, `"request_id":"`) {
					t.Errorf("deny body %s", body)
				}
				has401 := slices.ContainsFunc(d.DenyHeaders(), func(h engine.Header) bool { return h.Name == "www-authenticate" })
				if has401 != (d.Status() == 401) {
					t.Errorf("WWW-Authenticate present=%t on a %d", has401, d.Status())
				}
			}
		})
	}
}

// TestDecideSendsWhatTheAuthorizerNeeds: the call carries identity values in order, the
// credential, the binding and the normalised path.
func TestDecideSendsWhatTheAuthorizerNeeds(t *testing.T) {
	snap := world(t)
	fa := allowWith()
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: fa, Now: func() time.Time { return now }}
	d := e.Decide(context.Background(), &engine.Request{Method: "GET", Authority: "api.example.com", Target: "/%6Frders/7?test=d%65mo&x=1",
		Headers: hdr("x-app-code", goodCode, "token", "t0k", "x-request-id", "req-1")})
	if !d.Allowed() {
		t.Fatalf("denied: %s %s", d.Code, d.Message)
	}
	c := fa.last
	if !slices.Equal(c.Identity, []string{"t0k", "demo"}) || c.Path != "/orders/7" || c.Credential.Ref != "shop/mobile-app" ||
		c.Binding.Ref != "shop/two-factor" || c.RequestID != "req-1" || d.RequestID != "req-1" {
		t.Errorf("call %+v", c)
	}
}

func TestDenyBodyIsJSONEvenForHostileRequestIDs(t *testing.T) {
	d := engine.Decision{Code: engine.CodeAuthFailure, Message: `say "no"`, RequestID: "a\"b\\c\n\x00\xff"}
	want := `{"error_code":"AUTH_FAILURE","error_msg":"say \"no\"","request_id":"a\"b\\c\n\u0000\ufffd"}`
	if got := string(d.Body()); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	var body struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(d.Body(), &body); err != nil || body.RequestID != "a\"b\\c\n\x00\ufffd" {
		t.Errorf("the body decodes to request_id %q, %v", body.RequestID, err)
	}
}
