package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
)

// TestDecideHostileInput: what a client (or a proxy passing on what a client sent) can put
// in a request never opens a route and never reaches the authorizer: each row is refused
// with the code a client sees. The rows of TestDecide are not repeated here.
func TestDecideHostileInput(t *testing.T) {
	snap := world(t)
	get := func(host, target string, h ...string) engine.Request {
		return engine.Request{Method: "GET", Authority: host, Target: target, Headers: hdr(h...)}
	}
	many := func(n int) engine.Request {
		r := get("api.example.com", "/healthz")
		for i := range n {
			r.Headers = append(r.Headers, engine.Header{Name: "x-h", Value: strings.Repeat("v", i%3)})
		}
		return r
	}
	tests := []struct {
		name    string
		req     engine.Request
		eng     func(*engine.Engine)
		want    engine.Code
		wantMsg string
	}{
		// Hosts: an empty label is no host, whatever a wildcard would make of it.
		{name: "host with a leading dot", req: get(".example.com", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "host with an empty label", req: get("api..example.com", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "host with two trailing dots", req: get("api.example.com..", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "host with NUL", req: get("api.example.com\x00.evil.com", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "host with CR/LF", req: get("api.example.com\r\nx-evil: 1", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "host not UTF-8", req: get("api.ex\xffample.com", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "host with a non-ASCII look-alike", req: get("api.ex\u0430mple.com", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "bracketed host that is no IPv6 address", req: get("[api.example.com]", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "bracketed host with a zone", req: get("[fe80::1%eth0]", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "bracketed host with a bad port", req: get("[::1]:http", "/healthz"), want: engine.CodeRequestParametersFailure},
		{name: "IPv6 host is no route", req: get("[::1]:9001", "/healthz"), want: engine.CodeRouteNotFound},

		// Paths: raw control bytes and bad UTF-8 are refused before matching.
		{name: "path with NUL", req: get("api.example.com", "/healthz\x00"), want: engine.CodeRequestParametersFailure},
		{name: "path with CR/LF", req: get("api.example.com", "/healthz\r\nx-evil: 1"), want: engine.CodeRequestParametersFailure},
		{name: "path not UTF-8", req: get("api.example.com", "/catalog/\xc0\xaf"), want: engine.CodeRequestParametersFailure},
		{name: "overlong encoded slash", req: get("api.example.com", "/catalog/%C0%AF"), want: engine.CodeRequestParametersFailure},
		{name: "encoded CR/LF", req: get("api.example.com", "/catalog/%0D%0A"), want: engine.CodeRequestParametersFailure},
		{name: "a hostile query takes no part", req: get("api.example.com", "/healthz?\x00\r\n%zz"), want: engine.CodeNone},

		// Methods: a token, compared as sent.
		{name: "no method", req: engine.Request{Authority: "api.example.com", Target: "/healthz"}, want: engine.CodeRequestParametersFailure, wantMsg: "method"},
		{name: "method with CR/LF", req: engine.Request{Method: "GET\r\nx-evil: 1", Authority: "api.example.com", Target: "/healthz"}, want: engine.CodeRequestParametersFailure},
		{name: "method with NUL", req: engine.Request{Method: "GET\x00", Authority: "api.example.com", Target: "/healthz"}, want: engine.CodeRequestParametersFailure},
		{name: "method with a space", req: engine.Request{Method: "GET /x", Authority: "api.example.com", Target: "/healthz"}, want: engine.CodeRequestParametersFailure},
		{name: "lower-case method is another method", req: engine.Request{Method: "get", Authority: "api.example.com", Target: "/orders?test=demo", Headers: hdr("x-app-code", goodCode, "token", "t0k")}, want: engine.CodeRouteNotFound},
		{name: "extension method on a route without methods", req: engine.Request{Method: "PROPFIND", Authority: "api.example.com", Target: "/healthz"}, want: engine.CodeNone},

		// Header limits.
		{name: "headers at the count limit", req: many(engine.DefaultMaxHeaders), want: engine.CodeNone},
		{name: "one header over the count limit", req: many(engine.DefaultMaxHeaders + 1), want: engine.CodeRequestParametersFailure, wantMsg: "more than 256 headers"},
		{name: "one huge header", req: get("api.example.com", "/healthz", "x-big", strings.Repeat("a", engine.DefaultMaxHeaderBytes)), want: engine.CodeRequestParametersFailure, wantMsg: "exceed 65536 bytes"},
		{name: "a huge header name", req: get("api.example.com", "/healthz", strings.Repeat("x", engine.DefaultMaxHeaderBytes), "v"), want: engine.CodeRequestParametersFailure},
		{name: "limits configured lower", req: get("api.example.com", "/healthz", "a", "1", "b", "2"), eng: func(e *engine.Engine) { e.MaxHeaders = 1 }, want: engine.CodeRequestParametersFailure},
		{name: "limits turned off", req: many(4 * engine.DefaultMaxHeaders), eng: func(e *engine.Engine) { e.MaxHeaders, e.MaxHeaderBytes = -1, -1 }, want: engine.CodeNone},

		// Credential headers.
		{name: "Authorization twice", req: get("api.example.com", "/payments/7",
			"authorization", "SDK-HMAC-SHA256 Access=app-key-0001, SignedHeaders=x-sdk-date, Signature="+strings.Repeat("0", 64),
			"authorization", "SDK-HMAC-SHA256 Access=other-key, SignedHeaders=x-sdk-date, Signature="+strings.Repeat("0", 64)), want: engine.CodeRequestParametersFailure},
		{name: "AppCode with CR/LF", req: get("api.example.com", "/catalog", "x-app-code", goodCode+"\r\n"), want: engine.CodeAuthFailure},
		{name: "AppCode with NUL", req: get("api.example.com", "/catalog", "x-app-code", goodCode+"\x00"), want: engine.CodeAuthFailure},
		{name: "AppCode not UTF-8", req: get("api.example.com", "/catalog", "x-app-code", "\xff"+goodCode[1:]), want: engine.CodeAuthFailure},
		{name: "empty AppCode", req: get("api.example.com", "/catalog", "x-app-code", ""), want: engine.CodeAuthFailure},
		{name: "AppCode of 60 KiB", req: get("api.example.com", "/catalog", "x-app-code", strings.Repeat(goodCode, 60<<10/len(goodCode))), want: engine.CodeAuthFailure},
		{name: "Access with CR/LF", req: get("api.example.com", "/payments/7", "authorization", "SDK-HMAC-SHA256 Access=app-key-0001\r\nx: y, SignedHeaders=x-sdk-date, Signature="+strings.Repeat("0", 64), "x-sdk-date", now.Format("20060102T150405Z")), want: engine.CodeAuthFailure},

		// Identity sources: undecodable or missing values never call the function.
		{name: "identity with bad escapes", req: get("api.example.com", "/orders?test=%zz", "x-app-code", goodCode, "token", "t0k"), want: engine.CodeAuthorizerIdentitiesFailure},
		{name: "identity with a dangling escape", req: get("api.example.com", "/orders?test=%", "x-app-code", goodCode, "token", "t0k"), want: engine.CodeAuthorizerIdentitiesFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := allowWith("user", "u-42")
			e := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: fa, Now: func() time.Time { return now }}
			if tt.eng != nil {
				tt.eng(e)
			}
			d := e.Decide(context.Background(), &tt.req)
			if d.Code != tt.want {
				t.Fatalf("code %s (%s), want %s", d.Code, d.Message, tt.want)
			}
			if tt.wantMsg != "" && !strings.Contains(d.Message, tt.wantMsg) {
				t.Errorf("message %q does not say %q", d.Message, tt.wantMsg)
			}
			if tt.want != engine.CodeNone && fa.calls.Load() != 0 {
				t.Errorf("the authorizer was called for a refused request")
			}
		})
	}
}

// TestDecideRequestIDs: the id a deny echoes is the proxy's when sane, else one of ours; it
// is never cut, and repeated ids are joined as HTTP folds them.
func TestDecideRequestIDs(t *testing.T) {
	snap := world(t)
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: allowWith(), Now: func() time.Time { return now }}
	long := strings.Repeat("r", 129)
	tests := []struct {
		name string
		ids  []string
		want string // "" means a generated id
	}{
		{name: "as sent", ids: []string{"3f1c6b9e-envoy"}, want: "3f1c6b9e-envoy"},
		{name: "128 bytes kept", ids: []string{long[:128]}, want: long[:128]},
		{name: "129 bytes replaced", ids: []string{long}},
		{name: "empty replaced", ids: []string{""}},
		{name: "repeated, joined", ids: []string{"a", "b"}, want: "a,b"},
		{name: "CR/LF kept, escaped in the body", ids: []string{"id\r\nset-cookie: a=b"}, want: "id\r\nset-cookie: a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := engine.Request{Method: "GET", Authority: "api.example.com", Target: "/nowhere"}
			for _, id := range tt.ids {
				r.Headers = append(r.Headers, engine.Header{Name: "x-request-id", Value: id})
			}
			d := e.Decide(context.Background(), &r)
			switch {
			case tt.want != "" && d.RequestID != tt.want:
				t.Errorf("request id %q, want %q", d.RequestID, tt.want)
			case tt.want == "" && (d.RequestID == "" || d.RequestID == long || strings.Contains(d.RequestID, "r")):
				t.Errorf("request id %q, want a generated one", d.RequestID)
			}
			if body := string(d.Body()); strings.ContainsAny(body, "\r\n\x00") {
				t.Errorf("deny body holds raw control characters: %q", body)
			}
		})
	}
}
