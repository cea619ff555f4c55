package extauthz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
	"github.com/portcullis-dev/portcullis/authz/signing"
)

const appCode = "APPCODE-0001-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// stack is Portcullis on loopback: a compiled world whose authorizer is a real HTTP server
// allowing token "t0k", and the gRPC server.
type stack struct {
	client authv3.AuthorizationClient
	health healthpb.HealthClient
	calls  *atomic.Int32
}

func newStack(t *testing.T) *stack {
	t.Helper()
	calls := &atomic.Int32{}
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var ev struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		status := "deny"
		switch ev.Headers["token"] {
		case "t0k":
			status = "allow"
		case "boom":
			http.Error(w, "function crashed", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"status":"` + status + `","context":{"user":"u-42"}}`))
	}))
	t.Cleanup(fn.Close)

	snap := enginetest.World(t, fn.URL+"/verify", time.Now())
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: authorizer.New(authorizer.Options{})}
	gs, health := extauthz.NewGRPCServer(&extauthz.Server{Engine: eng})
	health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	conn := enginetest.Serve(t, gs)
	return &stack{client: authv3.NewAuthorizationClient(conn), health: healthpb.NewHealthClient(conn), calls: calls}
}

// envoyRequest is enginetest.EnvoyRequest: what Envoy's HTTP ext_authz filter sends.
var envoyRequest = enginetest.EnvoyRequest

// rawRequest is the same with encode_raw_headers: header_map with raw values, empty map.
func rawRequest(method, authority, path string, headers [][2]string) *authv3.CheckRequest {
	req := envoyRequest(method, authority, path, nil)
	hm := &corev3.HeaderMap{}
	for k, v := range req.Attributes.Request.Http.Headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	for _, kv := range headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	req.Attributes.Request.Http.Headers = nil
	req.Attributes.Request.Http.HeaderMap = hm
	return req
}

func okHeaders(t *testing.T, resp *authv3.CheckResponse) (map[string]string, []string) {
	t.Helper()
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("not an OK response: %v", resp)
	}
	set := map[string]string{}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s is not set with overwrite semantics", h.GetHeader().GetKey())
		}
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return set, ok.GetHeadersToRemove()
}

func TestCheckAllowTwoFactors(t *testing.T) {
	s := newStack(t)
	for name, req := range map[string]*authv3.CheckRequest{
		"headers map": envoyRequest("GET", "api.example.com", "/orders/7?test=demo", map[string]string{
			"x-app-code": appCode, "token": "t0k", "x-portcullis-credential": "shop/spoofed", "x-auth-admin": "true", "x-user-id": "root"}),
		"header_map (encode_raw_headers)": rawRequest("GET", "api.example.com", "/orders/7?test=demo", [][2]string{
			{"x-app-code", appCode}, {"token", "t0k"}, {"x-portcullis-credential", "shop/spoofed"}, {"x-auth-admin", "true"}, {"x-user-id", "root"}}),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := s.client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				t.Fatalf("status %v: %s", resp.GetStatus(), resp.GetDeniedResponse().GetBody())
			}
			set, removed := okHeaders(t, resp)
			want := map[string]string{"x-portcullis-credential": "shop/mobile-app", "x-portcullis-app-key": "app-key-0001", "x-auth-user": "u-42", "x-user-id": "u-42"}
			for k, v := range want {
				if set[k] != v {
					t.Errorf("upstream %s = %q, want %q (all: %v)", k, set[k], v, set)
				}
			}
			for _, k := range []string{"x-app-code", "x-apig-appcode", "x-auth-admin"} {
				if !slices.Contains(removed, k) {
					t.Errorf("%s not in headers_to_remove %v", k, removed)
				}
			}
			for k := range set {
				if slices.Contains(removed, k) {
					t.Errorf("%s is both set and removed", k)
				}
			}
		})
	}
}

func TestCheckDenies(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name     string
		req      *authv3.CheckRequest
		grpcCode codes.Code
		status   int32
		code     string
	}{
		{"no credential", envoyRequest("GET", "api.example.com", "/catalog", nil), codes.Unauthenticated, 401, "AUTH_HEADER_MISSING"},
		{"no route", envoyRequest("GET", "api.example.com", "/nowhere", nil), codes.NotFound, 404, "ROUTE_NOT_FOUND"},
		{"ambiguous path", envoyRequest("GET", "api.example.com", "/catalog/..%2Fadmin", nil), codes.InvalidArgument, 400, "REQUEST_PARAMETERS_FAILURE"},
		{"authorizer says no", envoyRequest("GET", "api.example.com", "/orders?test=demo", map[string]string{"x-app-code": appCode, "token": "nope"}), codes.PermissionDenied, 403, "ACCESS_DENIED"},
		{"identity missing", envoyRequest("GET", "api.example.com", "/orders", map[string]string{"x-app-code": appCode, "token": "t0k"}), codes.Unauthenticated, 401, "AUTHORIZER_IDENTITIES_FAILURE"},
		{"binding not ready", envoyRequest("GET", "api.example.com", "/broken", nil), codes.Internal, 500, "AUTHORIZER_CONF_FAILURE"},
		{"wrong AppCode", envoyRequest("GET", "api.example.com", "/catalog", map[string]string{"x-app-code": appCode + "x"}), codes.Unauthenticated, 401, "AUTH_FAILURE"},
		{"credential not bound", envoyRequest("GET", "api.example.com", "/catalog", map[string]string{"x-app-code": "APPCODE-OTHER-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}), codes.PermissionDenied, 403, "UNAUTHORIZED"},
		{"authorizer fails", envoyRequest("GET", "api.example.com", "/orders?test=demo", map[string]string{"x-app-code": appCode, "token": "boom"}), codes.Internal, 500, "AUTHORIZER_FAILURE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.client.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.grpcCode {
				t.Errorf("gRPC status %v, want %v", got, tt.grpcCode)
			}
			d := resp.GetDeniedResponse()
			if d == nil {
				t.Fatalf("no denied response: %v", resp)
			}
			if int32(d.GetStatus().GetCode()) != tt.status {
				t.Errorf("HTTP status %d, want %d", d.GetStatus().GetCode(), tt.status)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body["error_code"] != tt.code || body["request_id"] != "3f1c6b9e-envoy" || body["error_msg"] == "" {
				t.Errorf("body %s (%v)", d.GetBody(), err)
			}
			hs := map[string]string{}
			for _, h := range d.GetHeaders() {
				hs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			if hs["x-portcullis-error"] != tt.code {
				t.Errorf("x-portcullis-error %q", hs["x-portcullis-error"])
			}
			if _, ok := hs["www-authenticate"]; ok != (tt.status == 401) {
				t.Errorf("www-authenticate present=%t on %d", ok, tt.status)
			}
		})
	}
	if n := s.calls.Load(); n != 2 {
		t.Errorf("the authorizer was called %d times; only 'authorizer says no' and 'authorizer fails' should reach it", n)
	}
}

// TestCheckNotReady: before the first snapshot every Check is 503 NOT_READY.
func TestCheckNotReady(t *testing.T) {
	gs, _ := extauthz.NewGRPCServer(&extauthz.Server{Engine: &engine.Engine{Snapshot: func() *compile.Snapshot { return nil }}})
	resp, err := authv3.NewAuthorizationClient(enginetest.Serve(t, gs)).Check(context.Background(), envoyRequest("GET", "api.example.com", "/healthz", nil))
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unavailable || resp.GetDeniedResponse().GetStatus().GetCode() != 503 ||
		!strings.Contains(resp.GetDeniedResponse().GetBody(), "NOT_READY") {
		t.Errorf("response %v", resp)
	}
}

func TestHealth(t *testing.T) {
	s := newStack(t)
	resp, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v %v", resp, err)
	}
}

// FuzzConvert: any CheckRequest converts and is decided, against the fixture world, without
// panicking; with no policy it is never allowed; the response is consistent (OK exactly when
// allowed; a deny carries JSON whose error_code is x-portcullis-error and the gRPC message);
// and no header Portcullis sets holds CR, LF or NUL, whatever the request held.
func FuzzConvert(f *testing.F) {
	f.Add("GET", "api.example.com", "/orders?test=demo", "x-app-code", appCode, []byte(nil))
	f.Add("POST", "API.EXAMPLE.COM:80", "//a/../b", "authorization", "SDK-HMAC-SHA256 Access=a, SignedHeaders=x-sdk-date, Signature=00", []byte("body"))
	snap := enginetest.World(f, "", time.Now())
	allow := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: fuzzAuthorizer{}}
	none := &engine.Engine{Snapshot: func() *compile.Snapshot { return nil }}
	f.Fuzz(func(t *testing.T, method, host, path, hk, hv string, body []byte) {
		req := envoyRequest(method, host, path, map[string]string{hk: hv, "token": hv})
		req.Attributes.Request.Http.RawBody = body
		r := extauthz.Convert(req)
		if d := none.Decide(context.Background(), &r); d.Allowed() {
			t.Fatal("allowed without a policy")
		}
		d := allow.Decide(context.Background(), &r)
		resp := extauthz.Response(&r, &d)
		var hs []*corev3.HeaderValueOption
		if ok := resp.GetOkResponse(); ok != nil {
			if !d.Allowed() || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				t.Fatalf("OK response for %s", d.Code)
			}
			hs = ok.GetHeaders()
		} else {
			dr := resp.GetDeniedResponse()
			var b map[string]string
			if d.Allowed() || json.Unmarshal([]byte(dr.GetBody()), &b) != nil || b["error_code"] != d.Code.String() ||
				resp.GetStatus().GetMessage() != d.Code.String() || int(dr.GetStatus().GetCode()) != d.Status() {
				t.Fatalf("deny %s: status %v, body %q", d.Code, resp.GetStatus(), dr.GetBody())
			}
			hs = dr.GetHeaders()
		}
		for _, h := range hs {
			if strings.ContainsAny(h.GetHeader().GetKey()+h.GetHeader().GetValue(), "\r\n\x00") {
				t.Fatalf("header %q: %q", h.GetHeader().GetKey(), h.GetHeader().GetValue())
			}
		}
	})
}

// fuzzAuthorizer allows with the request's first identity value as context (the real
// client would refuse a hostile one; this shows the headers stay clean regardless).
type fuzzAuthorizer struct{}

func (fuzzAuthorizer) Authorize(_ context.Context, c authorizer.Call) (authorizer.Result, error) {
	return authorizer.Result{Allow: true, Context: []authorizer.KV{{Key: "user", Value: strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, c.Identity[0])}}}, nil
}

// TestCheckSignedBody: a signed POST verifies when Envoy sends the body (with_request_body),
// and is refused with a message that says why when it does not.
func TestCheckSignedBody(t *testing.T) {
	s := newStack(t)
	body := []byte(`{"amount":42}`)
	date := time.Now().UTC().Format(signing.DateFormat)
	hs := map[string]string{"x-sdk-date": date, "content-type": "application/json", "host": "api.example.com"}
	auth, err := signing.Sign([]byte("app-secret-0001-0123456789"), "app-key-0001", signing.Request{
		Method: "POST", Path: "/payments", Host: "api.example.com",
		Header: func(n string) (string, bool) { v, ok := hs[n]; return v, ok }, Body: body, BodyKnown: true,
	}, []string{"content-type", "host", "x-sdk-date"})
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"authorization": auth, "x-sdk-date": date, "content-type": "application/json", "content-length": "13"}

	withBody := envoyRequest("POST", "api.example.com", "/payments", headers)
	withBody.Attributes.Request.Http.RawBody = body
	resp, err := s.client.Check(context.Background(), withBody)
	if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("signed POST with its body: %v %v", resp, err)
	}

	tampered := envoyRequest("POST", "api.example.com", "/payments", headers)
	tampered.Attributes.Request.Http.RawBody = []byte(`{"amount":4200}`)
	resp, _ = s.client.Check(context.Background(), tampered)
	if resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Errorf("a changed body was accepted: %v", resp)
	}

	noBody := envoyRequest("POST", "api.example.com", "/payments", headers)
	resp, _ = s.client.Check(context.Background(), noBody)
	if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 401 || !strings.Contains(d.GetBody(), "with_request_body") {
		t.Errorf("body not sent: %v", resp)
	}
}

// TestCheckCachesTheAuthorizer: identical identities are answered from the cache; other
// identities call the function again.
func TestCheckCachesTheAuthorizer(t *testing.T) {
	s := newStack(t)
	check := func(token string) {
		t.Helper()
		resp, err := s.client.Check(context.Background(), envoyRequest("GET", "api.example.com", "/orders?test=demo", map[string]string{"x-app-code": appCode, "token": token}))
		if err != nil {
			t.Fatal(err)
		}
		if token == "t0k" && codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			t.Fatalf("denied: %v", resp)
		}
	}
	for range 5 {
		check("t0k")
	}
	if n := s.calls.Load(); n != 1 {
		t.Errorf("5 identical checks made %d authorizer calls, want 1", n)
	}
	check("other") // a deny: denyTTL defaults to 0, so it is not cached
	check("other")
	if n := s.calls.Load(); n != 3 {
		t.Errorf("after two uncached denies: %d calls, want 3", n)
	}
}
