package authorizer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// authz builds a compiled authorizer: header "token" as its one identity source, APIG, 30s
// TTL, no deny caching, 100 entries, 1s timeout.
func authz(rawURL string, opts ...func(*compile.Authorizer)) *compile.Authorizer {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	a := &compile.Authorizer{
		ObjectRef:       compile.ObjectRef{Namespace: "shop", Name: "token-check", Ref: "shop/token-check", UID: "authz-uid-1"},
		Generation:      1,
		Revision:        1001,
		URL:             u,
		IdentitySources: []compile.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}},
		TTL:             30 * time.Second,
		MaxEntries:      100,
		Timeout:         time.Second,
		ResponseFormat:  authv1alpha1.ResponseFormatAPIG,
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func withTTL(ttl, deny time.Duration) func(*compile.Authorizer) {
	return func(a *compile.Authorizer) { a.TTL, a.DenyTTL = ttl, deny }
}

func withTimeout(d time.Duration) func(*compile.Authorizer) {
	return func(a *compile.Authorizer) { a.Timeout = d }
}

func withFailOpen() func(*compile.Authorizer) {
	return func(a *compile.Authorizer) { a.FailOpen = true }
}

func withFormat(f authv1alpha1.ResponseFormat) func(*compile.Authorizer) {
	return func(a *compile.Authorizer) { a.ResponseFormat = f }
}

func withMaxEntries(n int) func(*compile.Authorizer) {
	return func(a *compile.Authorizer) { a.MaxEntries = n }
}

func binding(uid types.UID) *compile.Binding {
	return &compile.Binding{ObjectRef: compile.ObjectRef{Namespace: "shop", Name: "orders", Ref: "shop/orders", UID: uid}}
}

// call is a request for token tok.
func call(a *compile.Authorizer, tok string) Call {
	return Call{Authorizer: a, Binding: binding("binding-uid-1"), Identity: []string{tok}, Method: "GET", Path: "/orders/7", RequestID: "req-1", Source: netip.MustParseAddr("203.0.113.9")}
}

// fnServer is a custom authorizer on loopback that answers with answer and counts calls.
type fnServer struct {
	*httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	events [][]byte
	reqs   []seen
}

type seen struct {
	Method string
	Header http.Header
}

// Each configure runs before the server starts.
func newFn(t testing.TB, answer func(w http.ResponseWriter, r *http.Request, ev map[string]any), configure ...func(*httptest.Server)) *fnServer {
	t.Helper()
	s := &fnServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.events = append(s.events, b)
		s.reqs = append(s.reqs, seen{r.Method, r.Header.Clone()})
		s.mu.Unlock()
		var ev map[string]any
		_ = json.Unmarshal(b, &ev)
		answer(w, r, ev)
	}))
	for _, c := range configure {
		c(s.Server)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// fixed answers body with status 200.
func fixed(body string) func(http.ResponseWriter, *http.Request, map[string]any) {
	return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// byToken allows token "good" (with context user=<token>) and denies anything else.
func byToken(w http.ResponseWriter, _ *http.Request, ev map[string]any) {
	h, _ := ev["headers"].(map[string]any)
	tok, _ := h["token"].(string)
	if tok == "good" || len(tok) > 4 && tok[:4] == "good" {
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "allow", "context": map[string]any{"user": tok}})
		return
	}
	_, _ = io.WriteString(w, `{"status":"deny"}`)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
