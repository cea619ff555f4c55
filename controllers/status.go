package controllers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/go-logr/logr"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// StatusWriter writes the statuses the builds compute. It runs only on the elected replica:
// when elected it writes every status of the current snapshot, then the ones each build
// changes. It skips writes that would change nothing and retries on conflict.
type StatusWriter struct {
	client client.Client
	reader client.Reader // reads past the cache after a conflict
	policy *Policy
	log    logr.Logger

	attempts atomic.Uint64 // statuses this writer looked at (written or found unchanged)

	mu      sync.Mutex
	active  bool
	pending map[compile.ObjectKey]compile.ObjectStatus
	wake    chan struct{}

	// written is the resourceVersion of each object this writer updated in the last
	// minute, until the cache shows it. The cache may not have seen a write yet when the
	// object's status changes again: judged by it, a change back to what it still shows
	// would look like no change, and the object would keep the status just written.
	writtenMu sync.Mutex
	written   map[compile.ObjectKey]writtenVersion
	pruned    time.Time
}

type writtenVersion struct {
	rv string
	at time.Time
}

// cacheTrustLag is how long after its own write the writer reads an object past the cache
// when the cache does not show that write: far longer than a watch event takes.
const cacheTrustLag = time.Minute

// NewStatusWriter returns a writer fed by policy's builds.
func NewStatusWriter(c client.Client, reader client.Reader, policy *Policy, log logr.Logger) *StatusWriter {
	w := &StatusWriter{client: c, reader: reader, policy: policy, log: log, pending: map[compile.ObjectKey]compile.ObjectStatus{},
		wake: make(chan struct{}, 1), written: map[compile.ObjectKey]writtenVersion{}}
	policy.OnBuild(func(_ *compile.Snapshot, changed compile.Changes) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.active {
			return // not elected: the full set is written on election
		}
		for st := range changed.All() {
			w.pending[st.Key] = st
		}
		w.signal()
	})
	return w
}

func (w *StatusWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Attempts counts the statuses this writer has handled (written, unchanged, gone or failed);
// it stays 0 on a replica that is never elected.
func (w *StatusWriter) Attempts() uint64 { return w.attempts.Load() }

// NeedLeaderElection makes the manager start the writer on the elected replica only.
func (w *StatusWriter) NeedLeaderElection() bool { return true }

// Start writes statuses until ctx is done.
func (w *StatusWriter) Start(ctx context.Context) error {
	for !w.policy.Ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	w.mu.Lock()
	w.active = true
	// Everything the snapshot says, then whatever later builds change (they may overwrite
	// entries of this first set, which is what we want).
	for _, st := range w.policy.Snapshot().Statuses() {
		if _, newer := w.pending[st.Key]; !newer {
			w.pending[st.Key] = st
		}
	}
	w.mu.Unlock()
	w.signal()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.pending
		w.pending = map[compile.ObjectKey]compile.ObjectStatus{}
		w.mu.Unlock()
		w.writeBatch(ctx, batch)
	}
}

// statusWorkers bounds the status writes in flight: a cold start with 100,000 objects writes
// them all, and one at a time that takes many minutes.
const statusWorkers = 8

func (w *StatusWriter) writeBatch(ctx context.Context, batch map[compile.ObjectKey]compile.ObjectStatus) {
	w.pruneWritten(time.Now())
	work := make(chan compile.ObjectStatus)
	var wg sync.WaitGroup
	for range min(statusWorkers, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range work {
				result, err := w.write(ctx, st)
				w.attempts.Add(1)
				statusWrites.WithLabelValues(result).Inc()
				if err != nil && ctx.Err() == nil {
					w.log.Error(err, "Writing status failed; it is retried with the next build", "object", st.Key.String())
					w.mu.Lock()
					if _, newer := w.pending[st.Key]; !newer {
						w.pending[st.Key] = st
					}
					w.mu.Unlock()
				}
			}
		}()
	}
	for _, st := range batch {
		if ctx.Err() != nil {
			break
		}
		work <- st
	}
	close(work)
	wg.Wait()
}

func newObject(k compile.Kind) client.Object {
	switch k {
	case compile.KindCredential:
		return &authv1alpha1.Credential{}
	case compile.KindCustomAuthorizer:
		return &authv1alpha1.CustomAuthorizer{}
	case compile.KindAPIBinding:
		return &authv1alpha1.APIBinding{}
	}
	return nil
}

// write puts st on its object; it returns "written", "unchanged", "gone" or "error".
func (w *StatusWriter) write(ctx context.Context, st compile.ObjectStatus) (string, error) {
	result := "unchanged"
	fromCache := true
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		obj := newObject(st.Key.Kind)
		if obj == nil {
			return fmt.Errorf("no status for %s", st.Key)
		}
		var err error
		if fromCache {
			err = w.client.Get(ctx, st.Key.NamespacedName, obj)
			if err == nil && !w.cacheShowsWrite(st.Key, obj.GetResourceVersion(), time.Now()) {
				obj = newObject(st.Key.Kind) // the cache is behind this writer: read past it
				err = w.reader.Get(ctx, st.Key.NamespacedName, obj)
			}
		} else {
			err = w.reader.Get(ctx, st.Key.NamespacedName, obj)
		}
		if err != nil {
			if apierrors.IsNotFound(err) {
				result = "gone"
				return nil
			}
			return err
		}
		fromCache = false // a conflict means the cache was behind
		if obj.GetUID() != st.UID {
			result = "gone" // deleted and created again: a later build covers the new one
			return nil
		}
		if !applyStatus(obj, st) {
			result = "unchanged"
			return nil
		}
		result = "written"
		if err := w.client.Status().Update(ctx, obj); err != nil {
			return err
		}
		w.recordWrite(st.Key, obj.GetResourceVersion(), time.Now())
		return nil
	})
	if err != nil {
		return "error", err
	}
	return result, nil
}

// recordWrite notes the resourceVersion an update of the object under key returned.
func (w *StatusWriter) recordWrite(key compile.ObjectKey, rv string, now time.Time) {
	w.writtenMu.Lock()
	defer w.writtenMu.Unlock()
	w.written[key] = writtenVersion{rv: rv, at: now}
}

// cacheShowsWrite reports whether a cached object of resourceVersion rv may be trusted: the
// writer did not update it in the last minute, or the cache shows that update.
func (w *StatusWriter) cacheShowsWrite(key compile.ObjectKey, rv string, now time.Time) bool {
	w.writtenMu.Lock()
	defer w.writtenMu.Unlock()
	e, ok := w.written[key]
	switch {
	case !ok:
		return true
	case e.rv == rv || now.Sub(e.at) > cacheTrustLag:
		delete(w.written, key)
		return true
	}
	return false
}

// pruneWritten forgets the writes older than cacheTrustLag, at most once a minute, so that
// the objects written once and never again (a cold start writes them all) are not
// remembered for ever.
func (w *StatusWriter) pruneWritten(now time.Time) {
	w.writtenMu.Lock()
	defer w.writtenMu.Unlock()
	if now.Sub(w.pruned) < cacheTrustLag {
		return
	}
	w.pruned = now
	for k, e := range w.written {
		if now.Sub(e.at) > cacheTrustLag {
			delete(w.written, k)
		}
	}
}

// applyStatus puts st on obj; it reports whether anything changed. Conditions keep their
// lastTransitionTime unless their status changes.
func applyStatus(obj client.Object, st compile.ObjectStatus) bool {
	merge := func(conds *[]metav1.Condition, gen *int64) bool {
		before := append([]metav1.Condition(nil), (*conds)...)
		beforeGen := *gen
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		for _, c := range st.Conditions {
			c.LastTransitionTime = now
			meta.SetStatusCondition(conds, c)
		}
		*gen = st.ObservedGeneration
		return beforeGen != *gen || !apiequality.Semantic.DeepEqual(before, *conds)
	}
	switch o := obj.(type) {
	case *authv1alpha1.Credential:
		changed := merge(&o.Status.Conditions, &o.Status.ObservedGeneration)
		changed = changed || o.Status.AppKey != st.AppKey || o.Status.BoundBindings != st.BoundBindings
		o.Status.AppKey, o.Status.BoundBindings = st.AppKey, st.BoundBindings
		return changed
	case *authv1alpha1.CustomAuthorizer:
		return merge(&o.Status.Conditions, &o.Status.ObservedGeneration)
	case *authv1alpha1.APIBinding:
		return merge(&o.Status.Conditions, &o.Status.ObservedGeneration)
	}
	return false
}
