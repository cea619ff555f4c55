package controllers

import (
	"context"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// DefaultProbeInterval is how often the Kubernetes source confirms, with one cheap read, that
// the API server (and its etcd) still answers.
const DefaultProbeInterval = 10 * time.Second

// sourceHealth records whether the Kubernetes source is known to be current: every informer
// has an open watch on the API server, and the last probe of the API server succeeded. The
// informers' own error handler cannot tell this: a reflector retries a refused watch with
// backoff without ever calling it, so the watches are observed where they are opened and
// stopped instead.
type sourceHealth struct {
	mu         sync.Mutex
	tracked    bool
	namespace  string // probed namespace; empty: cluster-wide
	probeEvery time.Duration
	watches    []uint64 // per informer: token of its open watch, 0 when none
	token      uint64
	probeOK    bool
	lastProbe  time.Time // last successful probe
	since      time.Time // last instant known current (or the start), valid while not current
}

// WithSourceHealth makes the informers of a cache built from o report to p whether their
// watches are open, so that p can tell "no change" from "no contact" (see Policy.Freshness).
// SetupKubernetes then also probes the API server every probeEvery (0: DefaultProbeInterval)
// with a one-item list of APIBindings, which the source's RBAC already allows.
func WithSourceHealth(o cache.Options, p *Policy, probeEvery time.Duration) cache.Options {
	if probeEvery <= 0 {
		probeEvery = DefaultProbeInterval
	}
	h := &p.source
	h.mu.Lock()
	h.tracked = true
	h.probeEvery = probeEvery
	h.since = p.clock()
	if ns := mapsKeys(o.DefaultNamespaces); len(ns) > 0 {
		h.namespace = ns[0]
	}
	h.mu.Unlock()
	next := o.NewInformer
	if next == nil {
		next = toolscache.NewSharedIndexInformer
	}
	o.NewInformer = func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, idx toolscache.Indexers) toolscache.SharedIndexInformer {
		return next(p.trackWatches(lw), obj, resync, idx)
	}
	return o
}

// trackWatches returns lw reporting its watches to p's source health, when p tracks it (see
// WithSourceHealth); lw itself otherwise. The policy is current only while every tracked
// lister-watcher has an open watch.
func (p *Policy) trackWatches(lw toolscache.ListerWatcher) toolscache.ListerWatcher {
	h := &p.source
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.tracked {
		return lw
	}
	h.watches = append(h.watches, 0)
	return &trackedListerWatcher{inner: lw, lw: toolscache.ToListerWatcherWithContext(lw), p: p, id: len(h.watches) - 1}
}

func mapsKeys(m map[string]cache.Config) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Freshness reports whether the snapshot is known to reflect the source as it is now
// (current), and otherwise for how long it has not been known to (stale): since the source
// was last known current, or since it was set up when it never was. tracked is false when
// the source does not report its health (the file source, or a cache built without
// WithSourceHealth); current and stale mean nothing then.
func (p *Policy) Freshness() (current bool, stale time.Duration, tracked bool) {
	h := &p.source
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.tracked {
		return false, 0, false
	}
	now := p.clock()
	if p.currentLocked() {
		return true, 0, true
	}
	return false, now.Sub(h.since), true
}

// currentLocked reports whether the source is current; h.mu is held.
func (p *Policy) currentLocked() bool {
	h := &p.source
	if !h.probeOK || len(h.watches) == 0 || !p.Ready() {
		return false
	}
	for _, t := range h.watches {
		if t == 0 {
			return false
		}
	}
	return true
}

// changeLocked applies f to the health state and, when that ends a current period, records
// when it ended: at, or now when at is zero. h.mu is held.
func (p *Policy) changeLocked(f func(h *sourceHealth), at time.Time) {
	h := &p.source
	before := p.currentLocked()
	f(h)
	if before && !p.currentLocked() {
		if at.IsZero() {
			at = p.clock()
		}
		h.since = at
	}
}

func (p *Policy) watchOpened(id int) uint64 {
	h := &p.source
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token++
	t := h.token
	p.changeLocked(func(h *sourceHealth) { h.watches[id] = t }, time.Time{})
	return t
}

func (p *Policy) watchClosed(id int, t uint64) {
	h := &p.source
	h.mu.Lock()
	defer h.mu.Unlock()
	p.changeLocked(func(h *sourceHealth) {
		if t == 0 || h.watches[id] == t {
			h.watches[id] = 0
		}
	}, time.Time{})
}

func (p *Policy) probed(ok bool) {
	h := &p.source
	h.mu.Lock()
	defer h.mu.Unlock()
	now := p.clock()
	// A failed probe means contact was lost some time after the last good one.
	p.changeLocked(func(h *sourceHealth) { h.probeOK = ok }, h.lastProbe)
	if ok {
		h.lastProbe = now
	}
}

// trackedListerWatcher passes lists and watches through and tells the policy when a watch
// opens, fails to open, or stops (the reflector stops every watch it is done with, including
// one whose stream the API server closed).
type trackedListerWatcher struct {
	inner toolscache.ListerWatcher
	lw    toolscache.ListerWatcherWithContext
	p     *Policy
	id    int
}

func (t *trackedListerWatcher) List(opts metav1.ListOptions) (runtime.Object, error) {
	return t.ListWithContext(context.Background(), opts)
}

func (t *trackedListerWatcher) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return t.WatchWithContext(context.Background(), opts)
}

func (t *trackedListerWatcher) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	obj, err := t.lw.ListWithContext(ctx, opts)
	if err != nil {
		t.p.watchClosed(t.id, 0)
	}
	return obj, err
}

func (t *trackedListerWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := t.lw.WatchWithContext(ctx, opts)
	if err != nil {
		t.p.watchClosed(t.id, 0)
		return nil, err
	}
	tw := &trackedWatch{Interface: w}
	token := t.p.watchOpened(t.id)
	tw.stop = func() { t.p.watchClosed(t.id, token) }
	return tw, nil
}

// IsWatchListSemanticsUnSupported keeps the wrapped lister-watcher's answer, so that the
// reflector streams its initial list exactly as it would without the wrapper.
func (t *trackedListerWatcher) IsWatchListSemanticsUnSupported() bool {
	return watchlist.DoesClientNotSupportWatchListSemantics(t.inner)
}

type trackedWatch struct {
	watch.Interface
	once sync.Once
	stop func()
}

func (w *trackedWatch) Stop() {
	w.Interface.Stop()
	w.once.Do(w.stop)
}

// prober confirms contact with the API server every interval; it runs on every replica.
type prober struct {
	p      *Policy
	reader client.Reader
}

func (r *prober) NeedLeaderElection() bool { return false }

func (r *prober) Start(ctx context.Context) error {
	h := &r.p.source
	h.mu.Lock()
	every, ns := h.probeEvery, h.namespace
	h.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Second))
		err := r.reader.List(pctx, &authv1alpha1.APIBindingList{}, client.Limit(1), client.InNamespace(ns))
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		r.p.probed(err == nil)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// addProber adds the API server probe to mgr when the cache reports source health.
func addProber(mgr manager.Manager, p *Policy) error {
	p.source.mu.Lock()
	tracked := p.source.tracked
	p.source.mu.Unlock()
	if !tracked {
		return nil
	}
	return mgr.Add(&prober{p: p, reader: mgr.GetAPIReader()})
}
