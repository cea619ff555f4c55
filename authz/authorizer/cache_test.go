package authorizer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

func TestCache(t *testing.T) {
	type step struct {
		tok      string
		advance  time.Duration             // before the call
		change   func(*compile.Authorizer) // applied to a copy of the authorizer before the call
		binding  string                    // "" = binding-uid-1
		cred     string                    // credential UID, "" = none
		allow    bool
		cached   bool
		failNext bool // the server fails this call with 500
	}
	newRev := func(a *compile.Authorizer) { a.Revision, a.Generation = 2002, 2 }
	oldRev := func(a *compile.Authorizer) { a.Revision, a.Generation = 1000, 0 }
	tests := []struct {
		name  string
		opts  []func(*compile.Authorizer)
		steps []step
		calls int64 // server calls in all
	}{
		{name: "hit after miss", steps: []step{
			{tok: "good", allow: true}, {tok: "good", allow: true, cached: true}, {tok: "good", allow: true, cached: true},
		}, calls: 1},
		{name: "allow expires after ttl", steps: []step{
			{tok: "good", allow: true}, {tok: "good", advance: 29 * time.Second, allow: true, cached: true},
			{tok: "good", advance: time.Second, allow: true}, {tok: "good", allow: true, cached: true},
		}, calls: 2},
		{name: "deny ttl 0 not cached", steps: []step{{tok: "bad"}, {tok: "bad"}, {tok: "bad"}}, calls: 3},
		{name: "deny ttl cached and expires", opts: []func(*compile.Authorizer){withTTL(30*time.Second, 5*time.Second)}, steps: []step{
			{tok: "bad"}, {tok: "bad", advance: 4 * time.Second, cached: true}, {tok: "bad", advance: time.Second},
			{tok: "good", allow: true}, {tok: "good", advance: 20 * time.Second, allow: true, cached: true},
		}, calls: 3},
		{name: "ttl 0 caches nothing", opts: []func(*compile.Authorizer){withTTL(0, 0)}, steps: []step{
			{tok: "good", allow: true}, {tok: "good", allow: true},
		}, calls: 2},
		{name: "errors not cached", steps: []step{
			{tok: "good", failNext: true}, {tok: "good", allow: true}, {tok: "good", allow: true, cached: true},
		}, calls: 2},
		{name: "identity values are the key", steps: []step{
			{tok: "good-1", allow: true}, {tok: "good-2", allow: true}, {tok: "good-1", allow: true, cached: true}, {tok: "bad"},
		}, calls: 3},
		{name: "another binding misses", steps: []step{
			{tok: "good", allow: true}, {tok: "good", binding: "binding-uid-2", allow: true}, {tok: "good", binding: "binding-uid-2", allow: true, cached: true},
		}, calls: 2},
		{name: "another credential misses", steps: []step{
			{tok: "good", cred: "c1", allow: true}, {tok: "good", cred: "c2", allow: true}, {tok: "good", allow: true},
			{tok: "good", cred: "c1", allow: true, cached: true},
		}, calls: 3},
		{name: "new revision misses, previous still served to stragglers", steps: []step{
			{tok: "good", allow: true}, {tok: "good", change: newRev, allow: true}, {tok: "good", change: newRev, allow: true, cached: true},
			{tok: "good", allow: true, cached: true},
		}, calls: 2},
		{name: "previous revision dropped after its grace", steps: []step{
			{tok: "good", allow: true}, {tok: "good", change: newRev, allow: true},
			{tok: "good", advance: 3 * time.Second, change: newRev, allow: true, cached: true},
			// The old revision's entries are gone; an older generation is not cached.
			{tok: "good", allow: true}, {tok: "good", allow: true},
			{tok: "good", change: newRev, allow: true, cached: true},
		}, calls: 4},
		{name: "older generation bypasses the cache", steps: []step{
			{tok: "good", allow: true}, {tok: "good", change: oldRev, allow: true}, {tok: "good", change: oldRev, allow: true},
			{tok: "good", allow: true, cached: true},
		}, calls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fail atomic.Bool
			fn := newFn(t, func(w http.ResponseWriter, r *http.Request, ev map[string]any) {
				if fail.Swap(false) {
					w.WriteHeader(500)
					return
				}
				byToken(w, r, ev)
			})
			clk := newClock()
			cl := New(Options{Now: clk.Now})
			a := authz(fn.URL, tt.opts...)
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				fail.Store(s.failNext)
				c := call(a, s.tok)
				if s.change != nil {
					a2 := *a
					s.change(&a2)
					c.Authorizer = &a2
				}
				if s.binding != "" {
					c.Binding = binding(types.UID(s.binding))
				}
				if s.cred != "" {
					c.Credential = compile.NewCredential(&authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{
						Namespace: "shop", Name: s.cred, UID: types.UID(s.cred)}}, "", nil)
				}
				res, err := cl.Authorize(context.Background(), c)
				if s.failNext {
					if err == nil {
						t.Fatalf("step %d: no error", i)
					}
					continue
				}
				if err != nil || res.Allow != s.allow || res.Cached != s.cached {
					t.Fatalf("step %d: Authorize = %+v, %v; want allow=%v cached=%v", i, res, err, s.allow, s.cached)
				}
				if s.allow && !reflect.DeepEqual(res.Context, []KV{{"user", s.tok}}) {
					t.Fatalf("step %d: context %v", i, res.Context)
				}
			}
			if n := fn.calls.Load(); n != tt.calls {
				t.Errorf("%d authorizer calls, want %d", n, tt.calls)
			}
		})
	}
}

func TestEviction(t *testing.T) {
	fn := newFn(t, byToken)
	cl := New(Options{})
	a := authz(fn.URL, withMaxEntries(3))
	ask := func(tok string) bool {
		t.Helper()
		res, err := cl.Authorize(context.Background(), call(a, tok))
		if err != nil || !res.Allow {
			t.Fatalf("%s: %+v, %v", tok, res, err)
		}
		return res.Cached
	}
	for _, tok := range []string{"good1", "good2", "good3"} {
		ask(tok)
	}
	if !ask("good1") { // good1 is now the most recently used; good2 the least
		t.Fatal("good1 not cached")
	}
	ask("good4") // evicts good2
	if s := cl.Stats(); s.Entries != 3 || s.Evictions != 1 {
		t.Fatalf("entries %d evictions %d; want 3, 1", s.Entries, s.Evictions)
	}
	for tok, cached := range map[string]bool{"good1": true, "good3": true, "good4": true} {
		if ask(tok) != cached {
			t.Errorf("%s cached = %v", tok, !cached)
		}
	}
	if ask("good2") {
		t.Error("good2 survived eviction")
	}
}

// TestShardBounds: the shards of a revision cache add up to exactly MaxEntries.
func TestShardBounds(t *testing.T) {
	for _, n := range []int{1, 3, 127, 128, 1000, 4095, 10000, 1 << 20} {
		rc := newRevCache(&holder{}, &compile.Authorizer{MaxEntries: n})
		sum := 0
		for i := range rc.shards {
			sum += rc.shards[i].max
			if rc.shards[i].max < 1 {
				t.Errorf("MaxEntries %d: shard %d holds %d", n, i, rc.shards[i].max)
			}
		}
		if sum != n || len(rc.shards) > 64 || len(rc.shards)&(len(rc.shards)-1) != 0 {
			t.Errorf("MaxEntries %d: %d shards holding %d", n, len(rc.shards), sum)
		}
	}
}

// TestMaxEntriesUnderLoad: many keys through a sharded cache never hold more than
// MaxEntries.
func TestMaxEntriesUnderLoad(t *testing.T) {
	fn := newFn(t, fixed(`{"status":"allow"}`))
	cl := New(Options{})
	a := authz(fn.URL, withMaxEntries(300), withTimeout(30*time.Second))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := cl.Authorize(context.Background(), call(a, fmt.Sprintf("tok-%d-%d", g, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := cl.Stats(); s.Entries != 300 || s.Evictions != 800-300 {
		t.Errorf("entries %d evictions %d; want 300, 500", s.Entries, s.Evictions)
	}
}

func TestSweep(t *testing.T) {
	fn := newFn(t, byToken)
	clk := newClock()
	cl := New(Options{Now: clk.Now})
	a := authz(fn.URL)
	if _, err := cl.Authorize(context.Background(), call(a, "good")); err != nil {
		t.Fatal(err)
	}
	cl.sweep(clk.Now().Add(time.Minute)) // not idle yet
	if s := cl.Stats(); s.Entries != 1 {
		t.Fatalf("entries %d after an early sweep", s.Entries)
	}
	cl.sweep(clk.Now().Add(a.TTL + a.Timeout + time.Minute + time.Second))
	if s := cl.Stats(); s.Entries != 0 {
		t.Fatalf("entries %d after sweep", s.Entries)
	}
	n := 0
	cl.holders.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d holders after sweep", n)
	}
	res, err := cl.Authorize(context.Background(), call(a, "good"))
	if err != nil || res.Cached || !res.Allow {
		t.Fatalf("after sweep: %+v, %v", res, err)
	}
}

// TestRevisionFreesEntries: a third revision frees the first one's entries at once.
func TestRevisionFreesEntries(t *testing.T) {
	fn := newFn(t, byToken)
	cl := New(Options{})
	for rev := range uint64(3) {
		a := authz(fn.URL, func(a *compile.Authorizer) { a.Revision, a.Generation = 100+rev, int64(rev) })
		for i := range 10 {
			if _, err := cl.Authorize(context.Background(), call(a, fmt.Sprint("good", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := cl.Stats(); s.Entries != 20 {
		t.Errorf("entries %d; want 20 (the current and the previous revision)", s.Entries)
	}
}

func TestSingleFlight(t *testing.T) {
	release := make(chan struct{})
	fn := newFn(t, func(w http.ResponseWriter, r *http.Request, ev map[string]any) {
		<-release
		byToken(w, r, ev)
	})
	cl := New(Options{})
	a := authz(fn.URL, withTimeout(5*time.Second))
	const n = 1000
	var wg sync.WaitGroup
	results := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := cl.Authorize(context.Background(), call(a, "good"))
			if err == nil && (!res.Allow || res.Context[0].Value != "good") {
				err = fmt.Errorf("result %+v", res)
			}
			results <- err
		})
	}
	waitFor(t, func() bool { return cl.Stats().Shared == n-1 && fn.calls.Load() == 1 })
	close(release)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := fn.calls.Load(); c != 1 {
		t.Fatalf("%d authorizer calls for %d concurrent misses", c, n)
	}
	if s := cl.Stats(); s.Misses != n || s.Shared != n-1 || s.Calls[OutcomeAllow] != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestSingleFlightCancelledLeader: the caller whose miss started the call gives up; the
// call goes on for the others and its answer is cached.
func TestSingleFlightCancelledLeader(t *testing.T) {
	release := make(chan struct{})
	fn := newFn(t, func(w http.ResponseWriter, r *http.Request, ev map[string]any) {
		<-release
		byToken(w, r, ev)
	})
	cl := New(Options{})
	a := authz(fn.URL, withTimeout(5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := cl.Authorize(ctx, call(a, "good"))
		leader <- err
	}()
	waitFor(t, func() bool { return fn.calls.Load() == 1 })
	follower := make(chan Result, 1)
	go func() {
		res, err := cl.Authorize(context.Background(), call(a, "good"))
		if err != nil {
			t.Error(err)
		}
		follower <- res
	}()
	waitFor(t, func() bool { return cl.Stats().Shared == 1 })
	cancel()
	select {
	case err := <-leader:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("leader error %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the cancelled leader still waits")
	}
	close(release)
	if res := <-follower; !res.Allow || res.Cached {
		t.Fatalf("follower %+v", res)
	}
	if res, err := cl.Authorize(context.Background(), call(a, "good")); err != nil || !res.Cached {
		t.Fatalf("after: %+v, %v", res, err)
	}
	if c := fn.calls.Load(); c != 1 {
		t.Fatalf("%d calls", c)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int64
	fn := newFn(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		time.Sleep(2 * time.Millisecond)
		_, _ = io.WriteString(w, `{"status":"allow"}`)
	}, func(s *httptest.Server) {
		s.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	})
	cl := New(Options{})
	a := authz(fn.URL, withTTL(0, 0))
	const goroutines, each = 50, 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				res, err := cl.Authorize(context.Background(), call(a, fmt.Sprintf("tok-%d-%d", g, i)))
				if err != nil || !res.Allow {
					t.Errorf("%+v, %v", res, err)
				}
			}
		})
	}
	wg.Wait()
	// At most one connection per goroutine, but the transport may dial a few spares while
	// a request waits for a connection that another returns first.
	if n := conns.Load(); n > goroutines*each/2 {
		t.Errorf("%d connections for %d calls from %d goroutines", n, goroutines*each, goroutines)
	} else {
		t.Logf("%d connections for %d calls", n, goroutines*each)
	}
	if c := fn.calls.Load(); c != goroutines*each {
		t.Errorf("%d calls", c)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	fn := newFn(b, byToken)
	cl := New(Options{})
	a := authz(fn.URL, func(a *compile.Authorizer) { a.TTL = time.Hour })
	c := call(a, "good-eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
	ctx := context.Background()
	if _, err := cl.Authorize(ctx, c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := cl.Authorize(ctx, c)
		if err != nil || !res.Cached {
			b.Fatal(res, err)
		}
	}
}

func BenchmarkCacheHitParallel(b *testing.B) {
	fn := newFn(b, byToken)
	cl := New(Options{})
	a := authz(fn.URL, func(a *compile.Authorizer) { a.TTL, a.MaxEntries = time.Hour, 10000 })
	const keys = 1024
	calls := make([]Call, keys)
	for i := range calls {
		calls[i] = call(a, fmt.Sprint("good-", i))
		if _, err := cl.Authorize(context.Background(), calls[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			res, err := cl.Authorize(context.Background(), calls[i%keys])
			if err != nil || !res.Cached {
				b.Error(res, err)
				return
			}
		}
	})
}

func BenchmarkCacheKey(b *testing.B) {
	a := authz("http://127.0.0.1/")
	bd := binding("binding-uid-1")
	for _, n := range []int{100, 4000} {
		b.Run(fmt.Sprint(n, "B"), func(b *testing.B) {
			ids := []string{strings.Repeat("t", n), "GET"}
			b.ReportAllocs()
			for b.Loop() {
				_ = cacheKey(a, bd, nil, ids)
			}
		})
	}
}

// TestCacheKey: every part of the key counts, and length prefixes keep parts apart.
func TestCacheKey(t *testing.T) {
	a := authz("http://127.0.0.1/")
	a2 := *a
	a2.Revision++
	a3 := *a
	a3.UID = "other"
	cr := compile.NewCredential(&authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{UID: "c"}}, "", nil)
	long := strings.Repeat("x", 5000)
	keys := map[[32]byte]string{}
	for name, k := range map[string][32]byte{
		"base":            cacheKey(a, binding("b"), nil, []string{"ab", "c"}),
		"split moved":     cacheKey(a, binding("b"), nil, []string{"a", "bc"}),
		"joined":          cacheKey(a, binding("b"), nil, []string{"abc"}),
		"revision":        cacheKey(&a2, binding("b"), nil, []string{"ab", "c"}),
		"authorizer":      cacheKey(&a3, binding("b"), nil, []string{"ab", "c"}),
		"binding":         cacheKey(a, binding("b2"), nil, []string{"ab", "c"}),
		"credential":      cacheKey(a, binding("b"), cr, []string{"ab", "c"}),
		"long":            cacheKey(a, binding("b"), nil, []string{long}),
		"long and longer": cacheKey(a, binding("b"), nil, []string{long + "x"}),
	} {
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share a key", name, other)
		}
		keys[k] = name
	}
	if cacheKey(a, binding("b"), nil, []string{long}) != cacheKey(a, binding("b"), nil, []string{strings.Repeat("x", 5000)}) {
		t.Error("the key of a long value is not stable")
	}
}

func BenchmarkMiss(b *testing.B) {
	fn := newFn(b, fixed(`{"status":"allow","context":{"user":"u-1","tier":"gold"}}`))
	cl := New(Options{})
	a := authz(fn.URL, withTTL(0, 0))
	c := call(a, "good")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cl.Authorize(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}
