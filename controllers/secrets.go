package controllers

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// secretSource feeds the policy the labelled credential Secrets from a watch of its own
// rather than from the manager's informer cache. The cache would keep every Secret whole for
// as long as the process runs (about 900 bytes each, 90 MB for 100,000 credentials), next to
// the compact copy of its data the policy keeps anyway; this source hands each Secret to the
// policy as it arrives and keeps nothing, so the decoded Secret is garbage at once.
//
// It is a controller-runtime syncing source: the controller starts its workers only after
// WaitForSync, so the first build sees every Secret, as it sees every cached object.
type secretSource struct {
	policy *Policy
	lw     toolscache.ListerWatcher
	log    logr.Logger

	synced     chan struct{} // closed after the first complete list
	syncedOnce sync.Once
}

// newSecretSource watches the Secrets labelled auth.portcullis.dev/credential=true, in
// namespace only when it is not empty, through the API server at cfg (in protobuf, as the
// informer cache would); the reflector logs its errors (a list refused, a watch lost) to log.
func newSecretSource(cfg *rest.Config, namespace string, policy *Policy, log logr.Logger) (*secretSource, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("secrets client: %w", err)
	}
	selector := authv1alpha1.CredentialSecretLabel + "=true"
	secrets := c.Secrets(namespace)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return secrets.Watch(ctx, o)
		},
	}
	return &secretSource{policy: policy, lw: policy.trackWatches(lw), log: log, synced: make(chan struct{})}, nil
}

func (s *secretSource) String() string { return "credential Secrets" }

// Start runs the reflector until ctx is done; it returns at once.
func (s *secretSource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	r := toolscache.NewReflectorWithOptions(s.lw, &corev1.Secret{}, &secretStore{src: s, queue: q},
		toolscache.ReflectorOptions{Name: "credential Secrets", TypeDescription: "*v1.Secret", Logger: &s.log})
	go r.RunWithContext(ctx)
	return nil
}

// WaitForSync returns once the first list of Secrets is in the policy, or with ctx's error.
func (s *secretSource) WaitForSync(ctx context.Context) error {
	select {
	case <-s.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// secretStore is the reflector's store: it applies each list and watch event to the policy
// and enqueues the policy key when the policy changed.
type secretStore struct {
	src   *secretSource
	queue workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func (s *secretStore) enqueueIf(changed bool) {
	if changed {
		s.queue.Add(policyKey)
	}
}

func (s *secretStore) Add(obj any) error { return s.Update(obj) }

func (s *secretStore) Resync() error { return nil }

func (s *secretStore) Update(obj any) error {
	sec, err := asSecret(obj)
	if err != nil {
		return err
	}
	s.enqueueIf(s.src.policy.Set(sec))
	return nil
}

func (s *secretStore) Delete(obj any) error {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	sec, err := asSecret(obj)
	if err != nil {
		return err
	}
	s.enqueueIf(s.src.policy.Delete(sec))
	return nil
}

func asSecret(obj any) (*corev1.Secret, error) {
	if sec, ok := obj.(*corev1.Secret); ok {
		return sec, nil
	}
	return nil, fmt.Errorf("credential Secrets: got %T, want *v1.Secret", obj)
}

// Replace makes the policy's Secrets those of a complete list: after a first list, or a
// relist after the watch was lost, in which a Secret deleted meanwhile is missing.
func (s *secretStore) Replace(items []any, _ string) error {
	objs := make([]client.Object, 0, len(items))
	for _, it := range items {
		sec, err := asSecret(it)
		if err != nil {
			return err
		}
		objs = append(objs, sec)
	}
	s.enqueueIf(s.src.policy.ReplaceKind(compile.KindSecret, objs))
	s.src.syncedOnce.Do(func() { close(s.src.synced) })
	return nil
}
