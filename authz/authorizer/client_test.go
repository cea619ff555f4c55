package authorizer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

func TestAnswersOverHTTP(t *testing.T) {
	tests := []struct {
		name   string
		format authv1alpha1.ResponseFormat
		status int
		body   string
		want   Result
		reason string
	}{
		{name: "apig allow with context", format: apig, status: 200, body: `{"status":"allow","context":{"user":"u-1","level":3,"admin":false}}`,
			want: Result{Allow: true, Context: []KV{{"admin", "false"}, {"level", "3"}, {"user", "u-1"}}}},
		{name: "apig deny", format: apig, status: 200, body: `{"status":"deny"}`, want: Result{}},
		{name: "apig wrapped", format: apig, status: 200, body: wrap(`{"status":"allow","context":{"user":"u-2"}}`), want: Result{Allow: true, Context: []KV{{"user", "u-2"}}}},
		{name: "tencent allow", format: tencent, status: 200, body: `{"api-auth":true}`, want: Result{Allow: true}},
		{name: "tencent deny", format: tencent, status: 200, body: `{"api-auth":false}`, want: Result{}},
		{name: "mpaas allow", format: mpaas, status: 200, body: `{"success":true,"principal":{"uid":"9"}}`, want: Result{Allow: true, Context: []KV{{"uid", "9"}}}},
		{name: "mpaas deny", format: mpaas, status: 200, body: `{"success":false}`, want: Result{}},
		{name: "apig allow with status 201", format: apig, status: 201, body: `{"status":"allow"}`, reason: ReasonStatus},
		{name: "apig allow with status 403", format: apig, status: 403, body: `{"status":"allow"}`, reason: ReasonStatus},
		{name: "apig wrong case", format: apig, status: 200, body: `{"status":"Allow"}`, reason: ReasonMalformed},
		{name: "tencent answer to apig", format: apig, status: 200, body: `{"api-auth":true}`, reason: ReasonMalformed},
		{name: "apig context CRLF", format: apig, status: 200, body: `{"status":"allow","context":{"user":"a\r\nx-admin: 1"}}`, reason: ReasonContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := newFn(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			cl := New(Options{})
			res, err := cl.Authorize(context.Background(), call(authz(fn.URL, withFormat(tt.format)), "tok"))
			if tt.reason != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Reason != tt.reason {
					t.Fatalf("Authorize = %+v, %v; want reason %q", res, err, tt.reason)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(res, tt.want) {
				t.Fatalf("Authorize = %+v, %v; want %+v", res, err, tt.want)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	sources := []compile.IdentitySource{
		{In: authv1alpha1.IdentityHeader, Name: "token"},
		{In: authv1alpha1.IdentityQuery, Name: "test"},
		{In: authv1alpha1.IdentityCookie, Name: "sid"},
		{In: authv1alpha1.IdentityMethod},
		{In: authv1alpha1.IdentityPath},
	}
	cred := compile.NewCredential(&authv1alpha1.Credential{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "mobile-app", UID: "cred-uid"},
		Spec:       authv1alpha1.CredentialSpec{Metadata: map[string]string{"tier": "gold"}},
	}, "ak", []byte("do-not-send-this-secret"))
	base := map[string]any{
		"httpMethod":            "POST",
		"path":                  "/orders/7",
		"headers":               map[string]any{"token": "tok-1"},
		"queryStringParameters": map[string]any{"test": "q-1"},
		"cookies":               map[string]any{"sid": "c-1"},
		"user_data":             "user@123",
		"isBase64Encoded":       false,
		"requestContext":        map[string]any{"requestId": "req-9", "sourceIp": "203.0.113.9", "binding": "shop/orders"},
	}
	with := func(f func(m map[string]any)) map[string]any {
		b, _ := json.Marshal(base)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		f(m)
		return m
	}
	tests := []struct {
		name     string
		sendBody bool
		body     []byte
		cred     *compile.Credential
		want     map[string]any
	}{
		{name: "no body, no credential", body: []byte("ignored"), want: base},
		{name: "body sent base64", sendBody: true, body: []byte(`{"item":"<7>"}`), want: with(func(m map[string]any) {
			m["body"], m["isBase64Encoded"] = "eyJpdGVtIjoiPDc+In0=", true
		})},
		{name: "empty body sent", sendBody: true, want: with(func(m map[string]any) { m["body"], m["isBase64Encoded"] = "", true })},
		{name: "credential and metadata", cred: cred, want: with(func(m map[string]any) {
			rc := m["requestContext"].(map[string]any)
			rc["credential"], rc["credentialMetadata"] = "shop/mobile-app", map[string]any{"tier": "gold"}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := newFn(t, fixed(`{"status":"allow"}`))
			a := authz(fn.URL, func(a *compile.Authorizer) {
				a.IdentitySources, a.SendBody, a.UserData = sources, tt.sendBody, "user@123"
			})
			c := Call{Authorizer: a, Binding: binding("b"), Credential: tt.cred, Identity: []string{"tok-1", "q-1", "c-1", "POST", "/orders/7"},
				Method: "POST", Path: "/orders/7", Body: tt.body, RequestID: "req-9", Source: netip.MustParseAddr("203.0.113.9")}
			if _, err := New(Options{}).Authorize(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			fn.mu.Lock()
			defer fn.mu.Unlock()
			if len(fn.events) != 1 {
				t.Fatalf("%d calls", len(fn.events))
			}
			var got map[string]any
			if err := json.Unmarshal(fn.events[0], &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("event\n got %s\nwant %v", fn.events[0], tt.want)
			}
			if strings.Contains(string(fn.events[0]), "do-not-send-this-secret") || strings.Contains(string(fn.events[0]), `"ak"`) {
				t.Errorf("event carries the credential's secret or key: %s", fn.events[0])
			}
			r := fn.reqs[0]
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
			}
		})
	}
}

// rawServer accepts TCP connections on loopback and hands each to handle.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return "http://" + ln.Addr().String() + "/verify"
}

// reset reads one request from c, optionally writes prefix, and resets the connection.
func reset(prefix string) func(net.Conn) {
	return func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			_, _ = io.Copy(io.Discard, req.Body)
		}
		if prefix != "" {
			_, _ = io.WriteString(c, prefix)
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}
}

func TestFaults(t *testing.T) {
	// Long enough that a loaded CI machine answers the non-timing faults in time; the bound
	// asserted is still timeout + 50 ms.
	const timeout = time.Second
	allowSrv := newFn(t, fixed(`{"status":"allow"}`))
	wait := func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return "http://" + addr + "/verify"
	}()
	big := `{"status":"allow","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name     string
		handler  func(http.ResponseWriter, *http.Request, map[string]any) // or url
		url      string
		reason   string
		degrades bool // with failurePolicy: Allow
	}{
		{name: "timeout before headers", handler: wait, reason: ReasonTimeout, degrades: true},
		{name: "timeout after headers", handler: func(w http.ResponseWriter, r *http.Request, ev map[string]any) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			wait(w, r, ev)
		}, reason: ReasonTimeout, degrades: true},
		{name: "slow drip", handler: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			w.WriteHeader(200)
			for {
				if _, err := io.WriteString(w, " "); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}, reason: ReasonTimeout, degrades: true},
		{name: "503", handler: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.WriteHeader(503)
		}, reason: ReasonStatus, degrades: true},
		{name: "500 with an allow body", handler: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"status":"allow"}`)
		}, reason: ReasonStatus, degrades: true},
		{name: "404", handler: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.WriteHeader(404)
		}, reason: ReasonStatus},
		{name: "302 to an allowing server", handler: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			http.Redirect(w, r, allowSrv.URL, http.StatusFound)
		}, reason: ReasonRedirect},
		{name: "307 to an allowing server", handler: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			http.Redirect(w, r, allowSrv.URL, http.StatusTemporaryRedirect)
		}, reason: ReasonRedirect},
		{name: "garbage", handler: fixed("<html>ok</html>"), reason: ReasonMalformed},
		{name: "empty 200", handler: fixed(""), reason: ReasonMalformed},
		{name: "huge with length", handler: fixed(big), reason: ReasonOversize},
		{name: "huge chunked", handler: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			for i := 0; i < len(big); i += 64 << 10 {
				_, _ = io.WriteString(w, big[i:min(i+64<<10, len(big))])
				w.(http.Flusher).Flush()
			}
		}, reason: ReasonOversize},
		{name: "connection refused", url: refused, reason: ReasonUnreachable, degrades: true},
		{name: "reset before answer", url: rawServer(t, reset("")), reason: ReasonUnreachable, degrades: true},
		{name: "reset in the body", url: rawServer(t, reset("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":")), reason: ReasonUnreachable, degrades: true},
		{name: "not HTTP", url: rawServer(t, func(c net.Conn) {
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH\r\n")
			_ = c.Close()
		}), reason: ReasonUnreachable, degrades: true},
	}
	for _, tt := range tests {
		u := tt.url
		if tt.handler != nil {
			u = newFn(t, tt.handler).URL
		}
		for _, mode := range []struct {
			name string
			opt  func(*compile.Authorizer)
		}{{"cached", withTTL(30*time.Second, 30*time.Second)}, {"uncached", withTTL(0, 0)}} {
			for _, failOpen := range []bool{false, true} {
				name := tt.name + "/" + mode.name
				if failOpen {
					name += "/failOpen"
				}
				t.Run(name, func(t *testing.T) {
					opts := []func(*compile.Authorizer){withTimeout(timeout), mode.opt}
					if failOpen {
						opts = append(opts, withFailOpen())
					}
					// The time bound is retried twice: on a loaded machine (a CI runner
					// under -race) a wake-up can come late; a missing bound never passes.
					var (
						cl   *Client
						res  Result
						err  error
						took time.Duration
					)
					for range 3 {
						cl = New(Options{})
						start := time.Now()
						res, err = cl.Authorize(context.Background(), call(authz(u, opts...), "tok"))
						if took = time.Since(start); took <= timeout+50*time.Millisecond {
							break
						}
					}
					if took > timeout+50*time.Millisecond {
						t.Errorf("took %s, more than timeout %s + 50ms", took, timeout)
					}
					if failOpen && tt.degrades {
						if err != nil || !reflect.DeepEqual(res, Result{Allow: true, Degraded: true}) {
							t.Fatalf("Authorize = %+v, %v; want a degraded allow", res, err)
						}
						if s := cl.Stats(); s.Degraded != 1 || s.Entries != 0 {
							t.Errorf("stats %+v: want 1 degraded, nothing cached", s)
						}
						return
					}
					var ae *Error
					if !errors.As(err, &ae) || ae.Reason != tt.reason {
						t.Fatalf("Authorize = %+v, %v; want reason %q", res, err, tt.reason)
					}
					if res.Allow {
						t.Fatalf("failure with allow")
					}
					if msg := ae.Error(); strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "/verify") {
						t.Errorf("error message %q names the URL", msg)
					}
					if s := cl.Stats(); s.Calls[tt.reason] != 1 || s.Entries != 0 {
						t.Errorf("stats %+v: want one %s call, nothing cached", s, tt.reason)
					}
				})
			}
		}
	}
	if n := allowSrv.calls.Load(); n != 0 {
		t.Errorf("a redirect was followed: the target got %d calls", n)
	}
}

// TestCallerDeadline: a caller's own deadline ends its wait with ctx.Err(), not an *Error,
// cached or not.
func TestCallerDeadline(t *testing.T) {
	fn := newFn(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	for _, ttl := range []time.Duration{0, 30 * time.Second} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, err := New(Options{}).Authorize(ctx, call(authz(fn.URL, withTTL(ttl, 0), withTimeout(300*time.Millisecond), withFailOpen()), "tok"))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
			t.Errorf("ttl %s: Authorize error %v after %s; want the caller's deadline", ttl, err, time.Since(start))
		}
		var ae *Error
		if errors.As(err, &ae) {
			t.Errorf("ttl %s: caller deadline reported as an authorizer failure %v", ttl, ae)
		}
	}
}

func TestInvalidCall(t *testing.T) {
	a := authz("http://127.0.0.1:1/")
	for name, c := range map[string]Call{
		"no authorizer":     {Binding: binding("b"), Identity: []string{"x"}},
		"no binding":        {Authorizer: a, Identity: []string{"x"}},
		"identity mismatch": {Authorizer: a, Binding: binding("b")},
	} {
		res, err := New(Options{}).Authorize(context.Background(), c)
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason != ReasonInvalid || res.Allow {
			t.Errorf("%s: Authorize = %+v, %v", name, res, err)
		}
	}
}
