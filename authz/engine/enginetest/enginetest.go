// Package enginetest holds the fixture world the request-path tests decide against: the
// Secrets, Credentials, CustomAuthorizer and APIBindings in world/, compiled.
package enginetest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/controllers"
)

// placeholderURL is the authorizer URL written in world/; World replaces it.
const placeholderURL = "http://authz.invalid/verify"

// Dir is the directory of the fixture manifests.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "world")
}

// World compiles the fixture at now. With authorizerURL set, the CustomAuthorizer calls it
// instead of the unreachable placeholder.
func World(tb testing.TB, authorizerURL string, now time.Time) *compile.Snapshot {
	tb.Helper()
	s, _ := Load(tb, Dir(), placeholderURL, authorizerURL, now)
	return s
}

// Load compiles the policy directory dir at now, with every occurrence of placeholder in its
// files replaced by url (when url is set), and returns the snapshot and every object's
// status.
func Load(tb testing.TB, dir, placeholder, url string, now time.Time) (*compile.Snapshot, compile.Changes) {
	tb.Helper()
	if url != "" {
		tmp := tb.TempDir()
		entries, err := os.ReadDir(dir)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				tb.Fatal(err)
			}
			b = []byte(strings.ReplaceAll(string(b), placeholder, url))
			if err := os.WriteFile(filepath.Join(tmp, e.Name()), b, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
		dir = tmp
	}
	objs, err := controllers.LoadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	in := compile.NewInputs()
	in.Now = now
	for _, o := range objs {
		in.Set(o)
	}
	return compile.Build(in, nil)
}

// EnvoyRequest is a CheckRequest shaped as Envoy's HTTP ext_authz filter sends it: headers as
// a map with the pseudo-headers (and Host folded into :authority), the usual headers of a
// client behind Envoy (headers given replace them), and the source socket address.
func EnvoyRequest(method, authority, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": authority, ":method": method, ":path": path, ":scheme": "http",
		"x-request-id": "3f1c6b9e-envoy", "user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "http"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}},
		Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1234567890", Method: method, Headers: h, Path: path, Host: authority, Scheme: "http", Protocol: "HTTP/1.1",
		}},
	}}
}

// Serve serves gs on a loopback port for the rest of the test and returns a connection to
// it; both are closed when the test ends.
func Serve(tb testing.TB, gs *grpc.Server) *grpc.ClientConn {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	tb.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Authorizer serves, for the rest of the test, a custom authorizer function that allows token
// "t0k" with context user=u-42, allows "crlf" and "nul" with a context value that would split
// or cut a header, and denies any other token. It returns the URL to give World.
func Authorizer(tb testing.TB) string {
	tb.Helper()
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		switch ev.Headers["token"] {
		case "t0k":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"u-42"}}`)
		case "crlf":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"u-42\r\nx-portcullis-credential: shop/root"}}`)
		case "nul":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"u-42\u0000admin"}}`)
		default:
			_, _ = io.WriteString(w, `{"status":"deny"}`)
		}
	}))
	tb.Cleanup(fn.Close)
	return fn.URL + "/verify"
}
