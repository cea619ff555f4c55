package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// TestFreshness drives the source health through the informers' lister-watchers and the
// probe, as the reflectors and the prober do, on a fake clock.
func TestFreshness(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	p := NewPolicy(logr.Discard())
	p.clock = func() time.Time { return now }

	if _, _, tracked := p.Freshness(); tracked {
		t.Fatal("a policy without WithSourceHealth reports freshness")
	}
	var lws []toolscache.ListerWatcher
	o := WithSourceHealth(cache.Options{
		NewInformer: func(lw toolscache.ListerWatcher, _ runtime.Object, _ time.Duration, _ toolscache.Indexers) toolscache.SharedIndexInformer {
			lws = append(lws, lw)
			return nil
		},
		DefaultNamespaces: map[string]cache.Config{"shop": {}},
	}, p, 0)
	if p.source.namespace != "shop" || p.source.probeEvery != DefaultProbeInterval {
		t.Fatalf("probe of namespace %q every %v", p.source.namespace, p.source.probeEvery)
	}
	refused := errors.New("connection refused")
	var failWatch, failList bool
	inner := &toolscache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			if failList {
				return nil, refused
			}
			return &corev1.SecretList{}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			if failWatch {
				return nil, refused
			}
			return watch.NewFake(), nil
		},
	}
	o.NewInformer(inner, &corev1.Secret{}, 0, nil)
	o.NewInformer(inner, &corev1.Secret{}, 0, nil)
	a, b := lws[0].(toolscache.ListerWatcherWithContext), lws[1].(toolscache.ListerWatcherWithContext)
	ctx := context.Background()
	watches := map[string]watch.Interface{}
	open := func(name string, lw toolscache.ListerWatcherWithContext) func() {
		return func() {
			w, err := lw.WatchWithContext(ctx, metav1.ListOptions{})
			if err == nil {
				watches[name] = w
			}
		}
	}
	stop := func(name string) func() { return func() { watches[name].Stop() } }
	list := func(lw toolscache.ListerWatcherWithContext) func() {
		return func() { _, _ = lw.ListWithContext(ctx, metav1.ListOptions{}) }
	}

	for _, step := range []struct {
		what        string
		do          func()
		advance     time.Duration // before the step
		wantCurrent bool
		wantStale   time.Duration
	}{
		{what: "nothing yet", do: func() {}, advance: time.Second, wantStale: time.Second},
		{what: "both watches open, no probe yet, not ready", do: func() { open("a1", a)(); open("b1", b)() }, advance: time.Second, wantStale: 2 * time.Second},
		{what: "probe answered, still not ready", do: func() { p.probed(true) }, wantStale: 2 * time.Second},
		{what: "ready", do: func() { p.ready.Store(true) }, wantCurrent: true},
		{what: "quiet for an hour", do: func() {}, advance: time.Hour, wantCurrent: true},
		{what: "a's watch stops", do: stop("a1"), advance: time.Second, wantStale: 0},
		{what: "10s later", do: func() {}, advance: 10 * time.Second, wantStale: 10 * time.Second},
		{what: "a's watch refused", do: func() { failWatch = true; open("a2", a)() }, advance: time.Second, wantStale: 11 * time.Second},
		{what: "a's list refused", do: func() { failList = true; list(a)() }, advance: time.Second, wantStale: 12 * time.Second},
		{what: "a lists again", do: func() { failList = false; list(a)() }, advance: time.Second, wantStale: 13 * time.Second},
		{what: "a watches again", do: func() { failWatch = false; open("a3", a)() }, wantCurrent: true},
		{what: "the old watch of a stops late; a probe answers", do: func() { stop("a1")(); p.probed(true) }, advance: time.Minute, wantCurrent: true},
		{what: "the probe fails 9s after the last good one", do: func() { p.probed(false) }, advance: 9 * time.Second, wantStale: 9 * time.Second},
		{what: "watches stop meanwhile", do: func() { stop("a3")(); stop("b1")() }, advance: time.Second, wantStale: 10 * time.Second},
		{what: "watches back, probe still failing", do: func() { open("a4", a)(); open("b2", b)() }, advance: time.Second, wantStale: 11 * time.Second},
		{what: "probe answers", do: func() { p.probed(true) }, advance: time.Second, wantCurrent: true},
	} {
		now = now.Add(step.advance)
		step.do()
		current, stale, tracked := p.Freshness()
		if !tracked || current != step.wantCurrent || stale != step.wantStale {
			t.Fatalf("%s: current %v, stale %v, tracked %v; want current %v, stale %v", step.what, current, stale, tracked, step.wantCurrent, step.wantStale)
		}
	}

	// The wrapper keeps the reflector's choice of streaming lists.
	if a.(interface{ IsWatchListSemanticsUnSupported() bool }).IsWatchListSemanticsUnSupported() {
		t.Error("the wrapper turns off watch-list for a lister-watcher that supports it")
	}
	unsupported := toolscache.ToListWatcherWithWatchListSemantics(inner, fakeNoWatchList{})
	o.NewInformer(unsupported, &corev1.Secret{}, 0, nil)
	if !lws[2].(interface{ IsWatchListSemanticsUnSupported() bool }).IsWatchListSemanticsUnSupported() {
		t.Error("the wrapper turns on watch-list for a lister-watcher that does not support it")
	}
}

type fakeNoWatchList struct{}

func (fakeNoWatchList) IsWatchListSemanticsUnSupported() bool { return true }
