package httpauth_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/httpauth"
	"github.com/portcullis-dev/portcullis/authz/signing"
)

const officeCode = "APPCODE-OFFICE-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"

// loopback is the default of --trusted-proxy-cidrs.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func hostileEngine(t *testing.T) *engine.Engine {
	snap := enginetest.World(t, enginetest.Authorizer(t), time.Now())
	return &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: authorizer.New(authorizer.Options{})}
}

// checkAnswer asserts a forward-auth answer: the status, x-portcullis-error and, on a deny, a
// JSON body with the same error_code; no response header value holds a control character.
func checkAnswer(t *testing.T, status int, h http.Header, body []byte, wantStatus int, wantCode string) map[string]string {
	t.Helper()
	if status != wantStatus || h.Get("X-Portcullis-Error") != wantCode {
		t.Fatalf("%d %q, want %d %q: %s", status, h.Get("X-Portcullis-Error"), wantStatus, wantCode, body)
	}
	for k, vs := range h {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Errorf("response header %s: %q holds a control character", k, v)
			}
		}
	}
	if wantCode == "" {
		return nil
	}
	var b map[string]string
	if err := json.Unmarshal(body, &b); err != nil || b["error_code"] != wantCode {
		t.Errorf("deny body %q (%v)", body, err)
	}
	return b
}

// TestForwardAuthHostileHeaders: repeated and mixed-case headers, oversized headers, hostile
// values and authorizer answers, through a real HTTP server as nginx/Traefik reach it.
func TestForwardAuthHostileHeaders(t *testing.T) {
	srv := httptest.NewServer(&httpauth.Handler{Engine: hostileEngine(t), TrustedProxies: loopback})
	t.Cleanup(srv.Close)
	nginx := [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/catalog/1"}, {"X-Forwarded-Host", "api.example.com"}}
	traefik := [][2]string{{"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/catalog/1"}, {"X-Forwarded-Host", "api.example.com"}}
	two := [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/orders?test=demo"}, {"X-Forwarded-Host", "api.example.com"}, {"X-App-Code", appCode}}
	with := func(base [][2]string, kv ...string) [][2]string {
		out := append([][2]string(nil), base...)
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, [2]string{kv[i], kv[i+1]})
		}
		return out
	}
	many := with(nginx, "X-App-Code", appCode)
	for range engine.DefaultMaxHeaders {
		many = append(many, [2]string{"X-Filler", "f"})
	}
	tests := []struct {
		name       string
		header     [][2]string // added in order; a name may repeat
		status     int
		code       string
		wantHeader map[string]string // upstream headers of an allow
		noHeader   []string
	}{
		{"mixed-case AppCode header", with(nginx, "x-APP-code", appCode), 200, "", map[string]string{"X-Portcullis-Credential": "shop/mobile-app"}, nil},
		{"AppCode twice", with(nginx, "X-App-Code", appCode, "X-App-Code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"AppCode and its alias in other cases", with(nginx, "x-app-code", appCode, "X-APIG-APPCODE", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Original-URI twice", with(with(nginx, "X-Original-URI", "/healthz"), "X-App-Code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Forwarded-Uri twice", with(traefik, "X-Forwarded-Uri", "/healthz"), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Forwarded-Method twice", with(traefik, "X-Forwarded-Method", "POST"), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Forwarded-Host twice", with(with(nginx, "X-Forwarded-Host", "public.example.com"), "X-App-Code", appCode), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Forwarded-Host as a list", [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/catalog/1"}, {"X-Forwarded-Host", "api.example.com, evil.example.com"}, {"X-App-Code", appCode}}, 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Original-URI not UTF-8", [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/catalog/\xff"}, {"X-Forwarded-Host", "api.example.com"}, {"X-App-Code", appCode}}, 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Original-URI with an encoded NUL", [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/catalog/%00"}, {"X-Forwarded-Host", "api.example.com"}, {"X-App-Code", appCode}}, 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"X-Original-Method not a token", [][2]string{{"X-Original-Method", "GET /x"}, {"X-Original-URI", "/catalog/1"}, {"X-Forwarded-Host", "api.example.com"}, {"X-App-Code", appCode}}, 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"a 70 KiB header", with(nginx, "X-App-Code", appCode, "X-Big", strings.Repeat("b", 70<<10)), 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"more headers than the limit", many, 400, "REQUEST_PARAMETERS_FAILURE", nil, nil},
		{"mixed-case identity header", with(two, "TOKEN", "t0k"), 200, "", map[string]string{"X-User-Id": "u-42", "X-Auth-User": "u-42"}, nil},
		{"authorizer context with CR/LF", with(two, "Token", "crlf"), 500, "AUTHORIZER_FAILURE", nil, []string{"X-User-Id", "X-Auth-User"}},
		{"authorizer context with NUL", with(two, "Token", "nul"), 500, "AUTHORIZER_FAILURE", nil, []string{"X-User-Id", "X-Auth-User"}},
		{"spoofed upstream headers are not echoed", with(nginx, "X-App-Code", appCode, "X-Portcullis-Credential", "shop/root", "X-Portcullis-Degraded", "true"), 200, "", map[string]string{"X-Portcullis-Credential": "shop/mobile-app", "X-Portcullis-Degraded": ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+"/auth", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range tt.header {
				req.Header[http.CanonicalHeaderKey(kv[0])] = append(req.Header[http.CanonicalHeaderKey(kv[0])], kv[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			checkAnswer(t, resp.StatusCode, resp.Header, body, tt.status, tt.code)
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.noHeader {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("%s = %q on a deny", k, v)
				}
			}
		})
	}
}

// TestForwardAuthRawRequests: bytes Go's HTTP client will not send. NUL, CR and bare LF
// inside a value and headers over 1 MiB are refused by the HTTP server itself (400/431,
// before any decision); a folded line is joined and the host refused; invalid UTF-8 in the
// request id is echoed as valid JSON.
func TestForwardAuthRawRequests(t *testing.T) {
	srv := httptest.NewServer(&httpauth.Handler{Engine: hostileEngine(t), TrustedProxies: loopback})
	t.Cleanup(srv.Close)
	const head = "GET /auth HTTP/1.1\r\nHost: portcullis\r\nX-Original-Method: GET\r\nX-Forwarded-Host: api.example.com\r\nConnection: close\r\n"
	tests := []struct {
		name   string
		raw    string
		status int
		code   string // x-portcullis-error; "" when the HTTP server answers itself
		id     string // the request_id of the JSON body, when set
	}{
		{"NUL in X-Original-URI", head + "X-Original-URI: /catalog/1\x00\r\nX-App-Code: " + appCode + "\r\n\r\n", 400, "", ""},
		{"NUL in X-App-Code", head + "X-Original-URI: /catalog/1\r\nX-App-Code: " + appCode + "\x00\r\n\r\n", 400, "", ""},
		{"CR inside a value", head + "X-Original-URI: /catalog/1\r\nX-App-Code: " + appCode + "\rX-Evil: 1\r\n\r\n", 400, "", ""},
		{"folded X-Forwarded-Host", "GET /auth HTTP/1.1\r\nHost: portcullis\r\nX-Original-Method: GET\r\nX-Original-URI: /catalog/1\r\nX-Forwarded-Host: api.example.com\r\n evil.example.com\r\nX-App-Code: " + appCode + "\r\nConnection: close\r\n\r\n", 400, "REQUEST_PARAMETERS_FAILURE", ""},
		{"header over the server's 1 MiB", head + "X-Original-URI: /catalog/1\r\nX-Big: " + strings.Repeat("b", 2<<20) + "\r\n\r\n", 431, "", ""},
		{"request id not UTF-8", head + "X-Original-URI: /nowhere\r\nX-Request-Id: r\xff\xfe\"}\r\n\r\n", 404, "ROUTE_NOT_FOUND", "r\ufffd\ufffd\"}"},
		{"request id with a bare LF is two headers", head + "X-Original-URI: /nowhere\r\nX-Request-Id: r1\nX-App-Code: x\r\n\r\n", 404, "ROUTE_NOT_FOUND", "r1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			go func() { _, _ = io.WriteString(conn, tt.raw) }()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if tt.code == "" {
				if resp.StatusCode != tt.status || resp.Header.Get("X-Portcullis-Error") != "" {
					t.Fatalf("%d %q, want the server's own %d: %s", resp.StatusCode, resp.Header.Get("X-Portcullis-Error"), tt.status, body)
				}
				return
			}
			b := checkAnswer(t, resp.StatusCode, resp.Header, body, tt.status, tt.code)
			if !utf8.Valid(body) || (tt.id != "" && b["request_id"] != tt.id) {
				t.Errorf("request_id %q, want %q (body %q)", b["request_id"], tt.id, body)
			}
		})
	}
}

// TestForwardAuthBodyLimit: deciding the request itself (Envoy's HTTP ext_authz), a body
// over --max-body-bytes is not read, so a signature over it cannot verify: 401 with a
// message, never an allow on a body that was not seen.
func TestForwardAuthBodyLimit(t *testing.T) {
	srv := httptest.NewServer(&httpauth.Handler{Engine: hostileEngine(t), Mode: httpauth.ModeNone, MaxBodyBytes: 32})
	t.Cleanup(srv.Close)
	post := func(body string) (int, http.Header, []byte) {
		date := time.Now().UTC().Format(signing.DateFormat)
		hs := map[string]string{"x-sdk-date": date, "host": "api.example.com"}
		auth, err := signing.Sign([]byte("app-secret-0001-0123456789"), "app-key-0001", signing.Request{
			Method: "POST", Path: "/payments", Host: "api.example.com",
			Header: func(n string) (string, bool) { v, ok := hs[n]; return v, ok }, Body: []byte(body), BodyKnown: true,
		}, []string{"host", "x-sdk-date"})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", srv.URL+"/payments", strings.NewReader(body))
		req.Host = "api.example.com"
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Sdk-Date", date)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	status, h, b := post(strings.Repeat("a", 32))
	checkAnswer(t, status, h, b, 200, "")
	status, h, b = post(strings.Repeat("a", 33))
	checkAnswer(t, status, h, b, 401, "AUTH_FAILURE")
}

// TestForwardAuthClientAddress: the address allowedCIDRs is checked against (the office-only
// credential allows 10.0.0.0/8) is the right-most X-Forwarded-For entry that is not a trusted
// proxy when the peer is one (--trusted-proxy-cidrs, default loopback), else the peer itself.
// An entry that is not an address makes the client unknown, never the proxy.
func TestForwardAuthClientAddress(t *testing.T) {
	eng := hostileEngine(t)
	// An in-cluster ingress: the proxies share 10.0.0.0/8 with the office.
	cluster := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		peer    string
		xff     []string // header lines, in order
		status  int
		trusted []netip.Prefix // default: loopback
	}{
		{"trusted proxy, office client", "127.0.0.1:4000", []string{"10.1.2.3"}, 200, nil},
		{"trusted proxy, outside client", "127.0.0.1:4000", []string{"192.0.2.1"}, 403, nil},
		{"trusted IPv6 proxy", "[::1]:4000", []string{"10.1.2.3"}, 200, nil},
		{"trusted proxy as an IPv4-mapped peer", "[::ffff:127.0.0.1]:4000", []string{"10.1.2.3"}, 200, nil},
		{"client as an IPv4-mapped entry", "127.0.0.1:4000", []string{"::ffff:10.1.2.3"}, 200, nil},
		{"trusted proxy, no X-Forwarded-For: the proxy is the client", "127.0.0.1:4000", nil, 403, nil},
		{"a spoofed left part is ignored", "127.0.0.1:4000", []string{"10.9.9.9, 192.0.2.1"}, 403, nil},
		{"the right-most entry decides", "127.0.0.1:4000", []string{"192.0.2.1, 10.1.2.3"}, 200, nil},
		{"trusted hops are skipped", "127.0.0.1:4000", []string{"10.1.2.3, 127.0.0.5, ::1"}, 200, nil},
		{"the last header line is the right-most", "127.0.0.1:4000", []string{"192.0.2.1", "10.1.2.3"}, 200, nil},
		{"the last header line is the right-most (outside)", "127.0.0.1:4000", []string{"10.1.2.3", "192.0.2.1"}, 403, nil},
		{"unknown entry", "127.0.0.1:4000", []string{"10.1.2.3, unknown"}, 403, nil},
		{"entry with a port", "127.0.0.1:4000", []string{"10.1.2.3:5555"}, 403, nil},
		{"bracketed entry", "127.0.0.1:4000", []string{"[::1]"}, 403, nil},
		{"empty entry", "127.0.0.1:4000", []string{"10.1.2.3, "}, 403, nil},
		{"untrusted peer: X-Forwarded-For ignored (spoof)", "192.0.2.1:4000", []string{"10.1.2.3"}, 403, nil},
		{"untrusted peer in the office: the peer itself", "10.1.2.3:4000", []string{"192.0.2.1"}, 200, nil},
		{"untrusted peer, garbage X-Forwarded-For", "10.1.2.3:4000", []string{"unknown"}, 200, nil},
		{"peer address unparseable", "pipe", []string{"10.1.2.3"}, 403, nil},
		{"in-cluster proxy, office client", "10.0.0.5:4000", []string{"10.1.2.3"}, 200, cluster},
		{"in-cluster proxy, outside client", "10.0.0.5:4000", []string{"192.0.2.1, 10.0.0.6"}, 403, cluster},
		{"in-cluster proxy, unknown client is not the proxy", "10.0.0.5:4000", []string{"unknown"}, 403, cluster},
		{"in-cluster proxy, client with a port is not the proxy", "10.0.0.5:4000", []string{"192.0.2.1:5555"}, 403, cluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://portcullis/auth", nil)
			req.RemoteAddr = tt.peer
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("X-Original-URI", "/catalog/1")
			req.Header.Set("X-Forwarded-Host", "api.example.com")
			req.Header.Set("X-App-Code", officeCode)
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			h := &httpauth.Handler{Engine: eng, TrustedProxies: loopback}
			if tt.trusted != nil {
				h.TrustedProxies = tt.trusted
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			code := ""
			if tt.status != 200 {
				code = "UNAUTHORIZED"
			}
			checkAnswer(t, rec.Code, rec.Header(), rec.Body.Bytes(), tt.status, code)
		})
	}
}
