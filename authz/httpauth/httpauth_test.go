package httpauth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/httpauth"
)

const appCode = "APPCODE-0001-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// recorder is an engine that remembers the request it was given and allows or denies.
type recorder struct {
	got  engine.Request
	eng  *engine.Engine
	deny bool
}

func (r *recorder) Decide(ctx context.Context, req *engine.Request) engine.Decision {
	r.got = *req
	if r.eng != nil {
		return r.eng.Decide(ctx, req)
	}
	if r.deny {
		return engine.Decision{Code: engine.CodeAuthFailure, Message: "no", RequestID: "rid"}
	}
	return engine.Decision{Upstream: []engine.Header{{Name: "x-portcullis-credential", Value: "shop/a"}}}
}

func TestConvertReadsTheOriginalRequest(t *testing.T) {
	tests := []struct {
		name                  string
		header                map[string]string
		remote                string
		method, host, target  string
		source                string
		mustNotHave, mustHave string
	}{
		{name: "Traefik / Caddy", header: map[string]string{"X-Forwarded-Method": "POST", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Uri": "/orders?x=1", "X-Forwarded-For": "203.0.113.9", "X-App-Code": appCode},
			remote: "127.0.0.1:5000", method: "POST", host: "api.example.com", target: "/orders?x=1", source: "203.0.113.9", mustNotHave: "x-forwarded-uri", mustHave: "x-app-code"},
		{name: "nginx auth_request", header: map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/catalog/1", "X-Forwarded-Host": "api.example.com"},
			remote: "127.0.0.1:5000", method: "GET", host: "api.example.com", target: "/catalog/1", source: "127.0.0.1", mustNotHave: "x-original-uri"},
		{name: "nginx without X-Forwarded-Host uses Host", header: map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/catalog/1"},
			remote: "127.0.0.1:5000", method: "GET", host: "auth.internal", target: "/catalog/1", source: "127.0.0.1"},
		{name: "Envoy HTTP ext_authz: the request itself", header: map[string]string{"X-Forwarded-For": "203.0.113.9"},
			remote: "192.0.2.7:5000", method: "DELETE", host: "auth.internal", target: "/orders/7?y=2", source: "192.0.2.7"},
		{name: "untrusted peer: X-Forwarded-For ignored", header: map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/", "X-Forwarded-For": "10.0.0.1"},
			remote: "198.51.100.4:5000", method: "GET", host: "auth.internal", target: "/", source: "198.51.100.4"},
		{name: "trusted chain: right-most untrusted", header: map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/", "X-Forwarded-For": "10.0.0.1, 203.0.113.9, 127.0.0.2"},
			remote: "127.0.0.1:5000", method: "GET", host: "auth.internal", target: "/", source: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := &httpauth.Handler{Engine: rec, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
			req := httptest.NewRequest("DELETE", "http://auth.internal/orders/7?y=2", nil)
			req.RemoteAddr = tt.remote
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			g := rec.got
			if g.Method != tt.method || g.Authority != tt.host || g.Target != tt.target || g.Source.String() != tt.source {
				t.Errorf("got %s %s %s from %s", g.Method, g.Authority, g.Target, g.Source)
			}
			if _, ok := g.Header(tt.mustNotHave); tt.mustNotHave != "" && ok {
				t.Errorf("%s passed to the engine", tt.mustNotHave)
			}
			if _, ok := g.Header(tt.mustHave); tt.mustHave != "" && !ok {
				t.Errorf("%s not passed to the engine", tt.mustHave)
			}
		})
	}
}

func TestServeHTTPAnswers(t *testing.T) {
	snap := enginetest.World(t, "", time.Now())
	h := &httpauth.Handler{Engine: &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }}}
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(uri string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/auth", nil)
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Original-URI", uri)
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do("/catalog/1", map[string]string{"X-App-Code": appCode})
	if resp.StatusCode != 200 || resp.Header.Get("X-Portcullis-Credential") != "shop/mobile-app" || resp.Header.Get("X-Portcullis-App-Key") != "app-key-0001" {
		t.Errorf("allow: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do("/catalog/1", nil)
	b, _ := io.ReadAll(resp.Body)
	buf := string(b)
	if resp.StatusCode != 401 || resp.Header.Get("X-Portcullis-Error") != "AUTH_HEADER_MISSING" || resp.Header.Get("Www-Authenticate") == "" ||
		!strings.Contains(buf, `"error_code":"AUTH_HEADER_MISSING"`) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("deny: %d %v %s", resp.StatusCode, resp.Header, buf)
	}
}

// TestAmbiguousForwardingIsRefused: a client behind nginx adds X-Forwarded-* to get another
// route decided (or behind Traefik adds X-Original-*); both families at once are refused, and
// each mode reads only its own family.
func TestAmbiguousForwardingIsRefused(t *testing.T) {
	snap := enginetest.World(t, "", time.Now())
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }}
	tests := []struct {
		name   string
		mode   httpauth.Mode
		header map[string]string
		status int
		code   string
	}{
		{"nginx plus a spoofed X-Forwarded-Uri", httpauth.ModeAuto,
			map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/catalog/1", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Uri": "/healthz", "X-Forwarded-Method": "GET"}, 400, "REQUEST_PARAMETERS_FAILURE"},
		{"Traefik plus a spoofed X-Original-URI", httpauth.ModeAuto,
			map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/catalog/1", "X-Forwarded-Host": "api.example.com", "X-Original-URI": "/healthz"}, 400, "REQUEST_PARAMETERS_FAILURE"},
		{"original mode ignores X-Forwarded-Uri", httpauth.ModeOriginal,
			map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/catalog/1", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Uri": "/healthz"}, 401, "AUTH_HEADER_MISSING"},
		{"forwarded mode ignores X-Original-URI", httpauth.ModeForwarded,
			map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/catalog/1", "X-Forwarded-Host": "api.example.com", "X-Original-URI": "/healthz"}, 401, "AUTH_HEADER_MISSING"},
		{"ingress-nginx X-Original-URL", httpauth.ModeAuto,
			map[string]string{"X-Original-Method": "GET", "X-Original-URL": "https://api.example.com/catalog/1?x=1"}, 401, "AUTH_HEADER_MISSING"},
		{"ingress-nginx with a spoofed X-Forwarded-Host", httpauth.ModeAuto,
			map[string]string{"X-Original-Method": "GET", "X-Original-URL": "https://api.example.com/catalog/1", "X-Forwarded-Host": "public.example.com"}, 400, "REQUEST_PARAMETERS_FAILURE"},
		{"none mode decides the request itself", httpauth.ModeNone,
			map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/healthz", "X-Forwarded-Host": "api.example.com"}, 404, "ROUTE_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &httpauth.Handler{Engine: eng, Mode: tt.mode}
			req := httptest.NewRequest("GET", "http://portcullis.local/auth", nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("X-Portcullis-Error") != tt.code {
				t.Errorf("%d %s: %s", rec.Code, rec.Header().Get("X-Portcullis-Error"), rec.Body)
			}
		})
	}
}
