package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// +kubebuilder:rbac:groups=auth.portcullis.dev,resources=credentials;customauthorizers;apibindings,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.portcullis.dev,resources=credentials/status;customauthorizers/status;apibindings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// policyKey is the single work item every event enqueues: the aggregate reconciler rebuilds
// the one policy, and the workqueue coalesces bursts of events into one build.
var policyKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "policy"}}

// Scheme returns a scheme with the core kinds and the Portcullis kinds.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := authv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// CacheOptions limits the informer cache to what Portcullis reads: objects of one namespace
// when namespace is set, and no managedFields or last-applied annotations. Secrets are not
// cached: SetupKubernetes watches them on its own.
func CacheOptions(namespace string) cache.Options {
	o := cache.Options{
		DefaultTransform: stripMetadata,
		Mapper:           cacheMapper(),
	}
	if namespace != "" {
		o.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	return o
}

// cacheMapper maps the kinds the cache holds without asking the API server: the default
// mapper runs discovery when the cache is built, so a replica started while the API server
// is unreachable would exit instead of waiting, not ready, for it to come back.
func cacheMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, kind := range []string{"Credential", "CustomAuthorizer", "APIBinding"} {
		m.Add(authv1alpha1.GroupVersion.WithKind(kind), meta.RESTScopeNamespace)
	}
	return m
}

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// stripMetadata drops the metadata Portcullis never reads; at 100,000 objects
// managedFields alone would be most of the cache. Objects also share equal labels,
// spec.metadata, status conditions and namespace names (cacheShared).
func stripMetadata(in any) (any, error) {
	if o, ok := in.(client.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, ok := a[lastApplied]; ok {
				delete(a, lastApplied)
				o.SetAnnotations(a)
			}
		}
		cacheShared.Lock()
		cacheShared.s.share(o)
		cacheShared.Unlock()
	}
	return in, nil
}

// SetupKubernetes adds to mgr the aggregate reconciler that feeds policy from the informer
// cache and a watch of the credential Secrets (on every replica), and the status writer (on
// the elected one), which it returns. namespace is the one given to CacheOptions: the
// Secrets are watched in it, or in every namespace when it is empty.
func SetupKubernetes(mgr manager.Manager, policy *Policy, namespace string) (*StatusWriter, error) {
	secrets, err := newSecretSource(mgr.GetConfig(), namespace, policy, mgr.GetLogger().WithName("secrets"))
	if err != nil {
		return nil, err
	}
	r := &reconciler{policy: policy}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("policy").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, NeedLeaderElection: ptrTo(false)})
	// Status-only updates of our own kinds (our own writes) change nothing we compile.
	specOrLabels := predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})
	for _, obj := range []client.Object{&authv1alpha1.Credential{}, &authv1alpha1.CustomAuthorizer{}, &authv1alpha1.APIBinding{}} {
		b = b.WatchesRawSource(source.Kind(mgr.GetCache(), obj, r.handler(), specOrLabels))
	}
	b = b.WatchesRawSource(secrets)
	// One build at start even when there is nothing to watch, so an empty cluster is ready too.
	b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(policyKey)
		return nil
	}))
	if err := b.Complete(r); err != nil {
		return nil, err
	}
	if err := addProber(mgr, policy); err != nil {
		return nil, err
	}
	w := NewStatusWriter(mgr.GetClient(), mgr.GetAPIReader(), policy, mgr.GetLogger().WithName("status"))
	return w, mgr.Add(w)
}

func ptrTo[T any](v T) *T { return &v }

type reconciler struct{ policy *Policy }

// handler records each event in the policy's inputs and enqueues the one policy key.
func (r *reconciler) handler() handler.TypedEventHandler[client.Object, reconcile.Request] {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], q queue) {
			if r.policy.Set(e.Object) {
				q.Add(policyKey)
			}
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[client.Object], q queue) {
			if r.policy.Set(e.ObjectNew) {
				q.Add(policyKey)
			}
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], q queue) {
			if r.policy.Delete(e.Object) {
				q.Add(policyKey)
			}
		},
	}
}

// Reconcile builds and publishes the policy. The controller starts its workers only after
// every watch has delivered its initial list, so the first build sees a complete cache and
// may mark the policy ready.
func (r *reconciler) Reconcile(context.Context, reconcile.Request) (reconcile.Result, error) {
	next := r.policy.Rebuild(true)
	if next.IsZero() {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: time.Until(next) + time.Millisecond}, nil
}
