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
	dir := Dir()
	if authorizerURL != "" {
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
			b = []byte(strings.ReplaceAll(string(b), placeholderURL, authorizerURL))
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
	s, _ := compile.Build(in, nil)
	return s
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

// HostileAuthorizer serves, for the rest of the test, a custom authorizer function that
// allows token "t0k" with context user=u-42, allows "crlf" and "nul" with a context value
// that would split or cut a header, and denies any other token. It returns the URL to give
// World.
func HostileAuthorizer(tb testing.TB) string {
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
