package controllers

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// TestCacheShowsWrite: after its own update of an object, the status writer trusts the cache
// again once it shows that update, or once cacheTrustLag has passed; what it remembers is
// pruned.
func TestCacheShowsWrite(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	key := func(name string) compile.ObjectKey {
		return compile.ObjectKey{Kind: compile.KindCredential, NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
	}
	w := NewStatusWriter(nil, nil, NewPolicy(logr.Discard()), logr.Discard())
	w.recordWrite(key("a"), "12", t0)
	w.recordWrite(key("b"), "20", t0)
	w.recordWrite(key("c"), "30", t0.Add(50*time.Second))
	steps := []struct {
		name string
		key  string
		rv   string
		at   time.Time
		want bool
	}{
		{"never written", "z", "1", t0, true},
		{"the cache is behind", "a", "11", t0.Add(time.Second), false},
		{"still behind", "a", "11", t0.Add(2 * time.Second), false},
		{"the cache shows the write", "a", "12", t0.Add(3 * time.Second), true},
		{"forgotten once shown", "a", "11", t0.Add(4 * time.Second), true},
		{"someone else wrote since", "b", "21", t0.Add(time.Second), false},
		{"after cacheTrustLag", "b", "21", t0.Add(cacheTrustLag + time.Second), true},
	}
	for _, st := range steps {
		if got := w.cacheShowsWrite(key(st.key), st.rv, st.at); got != st.want {
			t.Errorf("%s: cacheShowsWrite(%s, %s) = %t, want %t", st.name, st.key, st.rv, got, st.want)
		}
	}
	w.pruneWritten(t0.Add(cacheTrustLag + 10*time.Second))
	if _, ok := w.written[key("c")]; !ok || len(w.written) != 1 {
		t.Errorf("after pruning: %v; want only c, written 50 s after the others", w.written)
	}
	w.pruneWritten(t0.Add(cacheTrustLag + 20*time.Second)) // within a minute of the last prune: no-op
	if len(w.written) != 1 {
		t.Errorf("a second prune within cacheTrustLag changed %v", w.written)
	}
	w.pruneWritten(t0.Add(3 * cacheTrustLag))
	if len(w.written) != 0 {
		t.Errorf("after every write is older than cacheTrustLag: %v", w.written)
	}
}
