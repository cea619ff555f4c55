package extauthz_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
)

const officeCode = "APPCODE-OFFICE-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"

// hostileClient is Portcullis on loopback gRPC with enginetest.Authorizer: token t0k
// is allowed with a clean context, "crlf" and "nul" with a context value that would split or
// cut a header.
func hostileClient(t *testing.T) authv3.AuthorizationClient {
	t.Helper()
	snap := enginetest.World(t, enginetest.Authorizer(t), time.Now())
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: authorizer.New(authorizer.Options{})}
	gs, _ := extauthz.NewGRPCServer(&extauthz.Server{Engine: eng})
	return authv3.NewAuthorizationClient(enginetest.Serve(t, gs))
}

// answer is what Envoy does with a CheckResponse: the HTTP status and error code, the
// headers it would set, and the deny body.
type answer struct {
	status int
	code   string
	set    map[string]string
	body   map[string]string
	raw    string
}

func answerOf(t *testing.T, resp *authv3.CheckResponse) answer {
	t.Helper()
	a := answer{set: map[string]string{}}
	var hs []*corev3.HeaderValueOption
	if ok := resp.GetOkResponse(); ok != nil {
		a.status, hs = 200, ok.GetHeaders()
	} else {
		d := resp.GetDeniedResponse()
		a.status, hs, a.raw = int(d.GetStatus().GetCode()), d.GetHeaders(), d.GetBody()
		if err := json.Unmarshal([]byte(a.raw), &a.body); err != nil || !utf8.ValidString(a.raw) {
			t.Errorf("deny body %q is not JSON: %v", a.raw, err)
		}
		a.code = a.body["error_code"]
	}
	for _, h := range hs {
		k, v := h.GetHeader().GetKey(), h.GetHeader().GetValue()
		if strings.ContainsAny(k+v, "\r\n\x00") {
			t.Errorf("response header %q: %q holds a control character", k, v)
		}
		a.set[k] = v
	}
	if a.status != 200 && a.set["x-portcullis-error"] != a.code {
		t.Errorf("x-portcullis-error %q, body error_code %q", a.set["x-portcullis-error"], a.code)
	}
	return a
}

// TestCheckHostileHeaders: repeated and mixed-case header names in both shapes Envoy sends
// (the headers map, where a repeated header arrives joined with ",", and header_map, where
// it repeats), hostile values and authorizer answers, over real gRPC.
func TestCheckHostileHeaders(t *testing.T) {
	client := hostileClient(t)
	const sig = "SDK-HMAC-SHA256 Access=app-key-0001, SignedHeaders=x-sdk-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"
	mapped := func(path string, kv ...string) *authv3.CheckRequest {
		h := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return envoyRequest("GET", "api.example.com", path, h)
	}
	raw := func(path string, kv ...string) *authv3.CheckRequest {
		var h [][2]string
		for i := 0; i+1 < len(kv); i += 2 {
			h = append(h, [2]string{kv[i], kv[i+1]})
		}
		return rawRequest("GET", "api.example.com", path, h)
	}
	// Proto strings are UTF-8: bytes that are not reach Portcullis only as header_map raw
	// values (encode_raw_headers), with the http fields left empty.
	rawPath := func(path string) *authv3.CheckRequest {
		req := raw("/", "x-app-code", appCode)
		req.Attributes.Request.Http.Path = ""
		for _, h := range req.Attributes.Request.Http.HeaderMap.Headers {
			if h.Key == ":path" {
				h.RawValue = []byte(path)
			}
		}
		return req
	}
	big := strings.Repeat("b", 70<<10)
	many := []string{"x-app-code", appCode}
	for range engine.DefaultMaxHeaders {
		many = append(many, "x-filler", "f")
	}
	tests := []struct {
		name     string
		req      *authv3.CheckRequest
		status   int
		code     string
		upstream map[string]string // headers an allow sets ("" : must not be set)
	}{
		{"map: mixed-case AppCode header", mapped("/catalog/1", "X-App-Code", appCode), 200, "", map[string]string{"x-portcullis-credential": "shop/mobile-app"}},
		{"map: one name in two cases", mapped("/catalog/1", "X-App-Code", appCode, "x-app-code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"map: a repeated AppCode joined by Envoy", mapped("/catalog/1", "x-app-code", appCode+","+appCode), 401, "AUTH_FAILURE", nil},
		{"map: mixed-case identity header", mapped("/orders?test=demo", "x-app-code", appCode, "Token", "t0k"), 200, "", map[string]string{"x-user-id": "u-42"}},
		{"header_map: AppCode twice", raw("/catalog/1", "x-app-code", appCode, "x-app-code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"header_map: AppCode and alias in other cases", raw("/catalog/1", "X-App-Code", appCode, "X-APIG-APPCODE", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"header_map: Authorization twice", raw("/payments/7", "authorization", sig, "Authorization", sig), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"header_map: mixed-case identity header", raw("/orders?test=demo", "X-App-Code", appCode, "TOKEN", "t0k"), 200, "", map[string]string{"x-auth-user": "u-42"}},
		{"header_map: a 70 KiB header", raw("/catalog/1", "x-app-code", appCode, "x-big", big), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"header_map: more headers than the limit", raw("/catalog/1", many...), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"AppCode with CR/LF", mapped("/catalog/1", "x-app-code", appCode+"\r\nx-evil: 1"), 401, "AUTH_FAILURE", nil},
		{"AppCode with NUL", raw("/catalog/1", "x-app-code", appCode+"\x00"), 401, "AUTH_FAILURE", nil},
		{"path with NUL", mapped("/catalog/1\x00", "x-app-code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"path with CR/LF", mapped("/catalog/1\r\nx-evil: 1", "x-app-code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"header_map: :path not UTF-8", rawPath("/catalog/\xff"), 400, "REQUEST_PARAMETERS_FAILURE", nil},
		{"authorizer context with CR/LF", mapped("/orders?test=demo", "x-app-code", appCode, "token", "crlf"), 500, "AUTHORIZER_FAILURE", nil},
		{"authorizer context with NUL", mapped("/orders?test=demo", "x-app-code", appCode, "token", "nul"), 500, "AUTHORIZER_FAILURE", nil},
		{"spoofed upstream headers are overwritten", mapped("/catalog/1", "x-app-code", appCode, "x-portcullis-credential", "shop/root", "x-portcullis-degraded", "true"),
			200, "", map[string]string{"x-portcullis-credential": "shop/mobile-app", "x-portcullis-degraded": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			a := answerOf(t, resp)
			if a.status != tt.status || a.code != tt.code {
				t.Fatalf("%d %s, want %d %s: %s", a.status, a.code, tt.status, tt.code, a.raw)
			}
			for k, v := range tt.upstream {
				if got, ok := a.set[k]; got != v || ok != (v != "") {
					t.Errorf("upstream %s = %q (set %t), want %q", k, got, ok, v)
				}
			}
		})
	}
}

// TestCheckHostileMethodAndHost: the method and :authority as a hostile gRPC client could
// send them (Envoy would not).
func TestCheckHostileMethodAndHost(t *testing.T) {
	client := hostileClient(t)
	tests := []struct {
		name, method, host string
		status             int
		code               string
	}{
		{"method with CR/LF", "GET\r\nx-evil: 1", "api.example.com", 400, "REQUEST_PARAMETERS_FAILURE"},
		{"no method", "", "api.example.com", 400, "REQUEST_PARAMETERS_FAILURE"},
		{"host with NUL", "GET", "api.example.com\x00.evil.com", 400, "REQUEST_PARAMETERS_FAILURE"},
		{"host with an empty label", "GET", ".api.example.com", 400, "REQUEST_PARAMETERS_FAILURE"},
		{"host in upper case with a port and a dot", "GET", "API.EXAMPLE.COM.:8443", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := envoyRequest(tt.method, tt.host, "/catalog/1", map[string]string{"x-app-code": appCode})
			req.Attributes.Request.Http.Headers[":method"] = tt.method
			req.Attributes.Request.Http.Headers[":authority"] = tt.host
			resp, err := client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if a := answerOf(t, resp); a.status != tt.status || a.code != tt.code {
				t.Fatalf("%d %s, want %d %s: %s", a.status, a.code, tt.status, tt.code, a.raw)
			}
		})
	}
}

// TestCheckRequestIDs: the x-request-id a deny echoes is in the JSON body only, escaped,
// never in a header; an overlong one is replaced.
func TestCheckRequestIDs(t *testing.T) {
	client := hostileClient(t)
	tests := []struct {
		name, id, want string // want "": a generated id
	}{
		{"CR/LF", "r1\r\nset-cookie: a=b", "r1\r\nset-cookie: a=b"},
		{"NUL and quotes", "r\x00\"}", "r\x00\"}"},
		{"not UTF-8", "r\xff\xfe", "r\ufffd\ufffd"},
		{"129 bytes", strings.Repeat("r", 129), ""},
	}
	for _, tt := range tests {
		for _, shape := range []string{"map", "header_map"} {
			if shape == "map" && !utf8.ValidString(tt.id) {
				continue // a proto string cannot carry it
			}
			t.Run(tt.name+" "+shape, func(t *testing.T) {
				req := envoyRequest("GET", "api.example.com", "/nowhere", map[string]string{"x-request-id": tt.id})
				if shape == "header_map" {
					req = rawRequest("GET", "api.example.com", "/nowhere", nil)
					for _, h := range req.Attributes.Request.Http.HeaderMap.Headers {
						if h.Key == "x-request-id" {
							h.RawValue = []byte(tt.id)
						}
					}
				}
				resp, err := client.Check(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				a := answerOf(t, resp)
				if a.status != 404 {
					t.Fatalf("status %d", a.status)
				}
				got := a.body["request_id"]
				if (tt.want != "" && got != tt.want) || (tt.want == "" && (got == "" || strings.Contains(got, "rrr"))) {
					t.Errorf("request_id %q, want %q", got, tt.want)
				}
				if strings.ContainsAny(a.raw, "\r\n\x00") {
					t.Errorf("raw control characters in the body %q", a.raw)
				}
			})
		}
	}
}

// TestCheckSourceAddress: allowedCIDRs (the office-only credential allows 10.0.0.0/8) is
// checked against the address Envoy reports as the source, never an X-Forwarded-For header
// (Envoy's xff_num_trusted_hops has already applied it).
func TestCheckSourceAddress(t *testing.T) {
	client := hostileClient(t)
	tests := []struct {
		name   string
		source *corev3.Address // nil: no source at all
		xff    string
		status int
	}{
		{"office address", sock("10.1.2.3"), "", 200},
		{"outside address", sock("192.0.2.1"), "", 403},
		{"IPv4-mapped office address", sock("::ffff:10.1.2.3"), "", 200},
		{"outside address with a spoofed X-Forwarded-For", sock("192.0.2.1"), "10.1.2.3", 403},
		{"office address with an outside X-Forwarded-For", sock("10.1.2.3"), "192.0.2.1", 200},
		{"address that is not an IP", sock("office.example.com"), "", 403},
		{"address with a zone", sock("fe80::1%eth0"), "", 403},
		{"unix socket", &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock"}}}, "10.1.2.3", 403},
		{"no source", nil, "10.1.2.3", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"x-app-code": officeCode}
			if tt.xff != "" {
				h["x-forwarded-for"] = tt.xff
			}
			req := envoyRequest("GET", "api.example.com", "/catalog/1", h)
			req.Attributes.Source = nil
			if tt.source != nil {
				req.Attributes.Source = &authv3.AttributeContext_Peer{Address: tt.source}
			}
			resp, err := client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			a := answerOf(t, resp)
			want := ""
			if tt.status != 200 {
				want = "UNAUTHORIZED"
			}
			if a.status != tt.status || a.code != want {
				t.Fatalf("%d %s, want %d %s", a.status, a.code, tt.status, want)
			}
		})
	}
}

func sock(addr string) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}
}

// TestCheckOversizedMessage: a CheckRequest over gRPC's 4 MiB receive limit (a body Envoy
// was told to buffer beyond it) is refused by the gRPC server before any decision:
// ResourceExhausted, which Envoy turns into its status_on_error (403 unless configured).
func TestCheckOversizedMessage(t *testing.T) {
	client := hostileClient(t)
	req := envoyRequest("POST", "api.example.com", "/healthz", nil)
	req.Attributes.Request.Http.RawBody = make([]byte, 5<<20)
	_, err := client.Check(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 5 MiB CheckRequest: %v, want ResourceExhausted", err)
	}
}
