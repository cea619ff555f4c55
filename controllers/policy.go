// Package controllers feeds the policy compiler from a source (the Kubernetes API through
// informers, or a directory of manifests), publishes each snapshot through an atomic
// pointer, and, on the elected replica, writes the objects' status conditions.
package controllers

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// Policy holds the objects a source delivers and the snapshot built from them. Sources call
// Set, Delete or Replace, then Rebuild; the request path calls Snapshot, which never blocks.
type Policy struct {
	log   logr.Logger
	clock func() time.Time

	mu       sync.Mutex // serialises changes to in and builds
	in       *compile.Inputs
	expiries expiryHeap // credentials whose expiresAt is still to come

	snap  atomic.Pointer[compile.Snapshot]
	ready atomic.Bool

	source sourceHealth // how current the source is known to be (see Freshness)

	listenMu  sync.Mutex
	listeners []func(snap *compile.Snapshot, changed compile.Changes)
}

// NewPolicy returns an empty policy with no snapshot.
func NewPolicy(log logr.Logger) *Policy {
	return &Policy{log: log, clock: time.Now, in: compile.NewInputs()}
}

// Snapshot returns the published snapshot, or nil before the first build.
func (p *Policy) Snapshot() *compile.Snapshot { return p.snap.Load() }

// Ready reports whether a snapshot built from a complete view of the source is published.
func (p *Policy) Ready() bool { return p.ready.Load() }

// OnBuild registers f to be called, in build order, after every published build with the
// statuses that changed.
func (p *Policy) OnBuild(f func(snap *compile.Snapshot, changed compile.Changes)) {
	p.listenMu.Lock()
	defer p.listenMu.Unlock()
	p.listeners = append(p.listeners, f)
}

// Set adds or replaces an object; it reports whether anything changed.
func (p *Policy) Set(obj client.Object) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set(obj)
}

func (p *Policy) set(obj client.Object) bool {
	pr, ok := p.in.PrepareNew(obj) // an unchanged object is not converted
	return ok && p.setPrepared(pr)
}

func (p *Policy) setPrepared(pr compile.Prepared) bool {
	if !p.in.SetPrepared(pr) {
		return false
	}
	if at, ok := pr.ExpiresAt(); ok {
		heap.Push(&p.expiries, expiry{at: at, key: pr.Key().NamespacedName})
	}
	return true
}

// Delete removes an object; it reports whether anything changed.
func (p *Policy) Delete(obj client.Object) bool {
	key, ok := compile.KeyOf(obj)
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.in.Delete(key)
}

// Replace makes the set equal to objs: new and changed objects are set, missing ones
// deleted. It reports whether anything changed.
func (p *Policy) Replace(objs []client.Object) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replace(p.prepareAll(objs), p.in.Keys())
}

// Prepare prepares obj for ReplacePrepared (see compile.Inputs.PrepareNew): of an object the
// policy holds unchanged, only its name is kept. It may be called from any goroutine.
func (p *Policy) Prepare(obj client.Object) (compile.Prepared, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.in.PrepareNew(obj)
}

// ReplacePrepared is Replace for objects prepared by Prepare or compile.Prepare; the objects
// Prepare found unchanged must not have been changed or deleted since.
func (p *Policy) ReplacePrepared(objs []compile.Prepared) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replace(objs, p.in.Keys())
}

// ReplaceKind makes the objects of one kind equal to objs, which are all of that kind, as
// Replace does for the whole set: for a source that lists each kind on its own.
func (p *Policy) ReplaceKind(kind compile.Kind, objs []client.Object) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replace(p.prepareAll(objs), p.in.KeysOf(kind))
}

// prepareAll prepares the objects of a supported type, converting only those that changed
// (a relist hands over every object again); p.mu is held.
func (p *Policy) prepareAll(objs []client.Object) []compile.Prepared {
	out := make([]compile.Prepared, 0, len(objs))
	for _, o := range objs {
		if pr, ok := p.in.PrepareNew(o); ok {
			out = append(out, pr)
		}
	}
	return out
}

// replace sets objs and deletes the keys of had that objs does not hold; p.mu is held.
func (p *Policy) replace(objs []compile.Prepared, had []compile.ObjectKey) bool {
	keys := func(yield func(compile.ObjectKey) bool) {
		for _, o := range objs {
			if !yield(o.Key()) {
				return
			}
		}
	}
	if len(had) == 0 {
		// A first load has nothing to delete, and room to make.
		p.in.Reserve(keys)
	}
	changed := false
	for _, o := range objs {
		changed = p.setPrepared(o) || changed
	}
	if len(had) == 0 {
		return changed
	}
	keep := make(map[compile.ObjectKey]struct{}, len(objs))
	for k := range keys {
		keep[k] = struct{}{}
	}
	for _, k := range had {
		if _, ok := keep[k]; !ok {
			changed = p.in.Delete(k) || changed
		}
	}
	return changed
}

// Rebuild builds and publishes a new snapshot if anything changed since the last build (or
// if there is none yet), and marks the policy ready when complete is true: the caller has
// delivered every object of its source. It returns when the next credential expires (zero:
// none), so the caller can rebuild then.
func (p *Policy) Rebuild(complete bool) (nextExpiry time.Time) {
	p.mu.Lock()
	now := p.clock()
	for len(p.expiries) > 0 && !p.expiries[0].at.After(now) {
		e := heap.Pop(&p.expiries).(expiry)
		p.in.Touch(compile.ObjectKey{Kind: compile.KindCredential, NamespacedName: e.key})
	}
	if len(p.expiries) > 0 {
		nextExpiry = p.expiries[0].at
	}
	prev := p.snap.Load()
	if prev != nil && p.in.Changed() == 0 {
		p.mu.Unlock()
		if complete {
			p.ready.Store(true)
		}
		return nextExpiry
	}
	changes := p.in.Changed()
	p.in.Now = now
	start := time.Now()
	next, statuses := compile.Build(p.in, prev)
	took := time.Since(start)
	p.snap.Store(next)
	if complete {
		p.ready.Store(true)
	}
	// Listeners run under the build lock so that they see builds in order.
	p.listenMu.Lock()
	for _, f := range p.listeners {
		f(next, statuses)
	}
	p.listenMu.Unlock()
	objects := p.in.Len()
	p.mu.Unlock()

	buildSeconds.Observe(took.Seconds())
	snapshotVersion.Set(float64(next.Version))
	p.log.V(1).Info("Built snapshot", "version", next.Version, "changes", changes, "objects", objects, "statuses", statuses.Len(), "took", took)
	return nextExpiry
}

type expiry struct {
	at  time.Time
	key types.NamespacedName
}

// expiryHeap orders credentials by expiresAt, soonest first. Stale entries (a credential
// edited or deleted since) only cause one extra evaluation.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
