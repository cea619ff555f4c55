package controllers_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/controllers"
	"github.com/portcullis-dev/portcullis/internal/canary"
)

// cluster is one real kube-apiserver + etcd for the package, with the Portcullis CRDs and a
// manager running the Kubernetes source.
var (
	restConfig *rest.Config
	k8s        client.Client
	policy     *controllers.Policy
	probes     http.Handler
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing (make fuzz) runs FuzzLoadDir alone, in several worker processes: no API server.
		os.Exit(m.Run())
	}
	os.Exit(runEnv(m))
}

func runEnv(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test` (it builds kube-apiserver and etcd into bin/k8s)")
		return 1
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))))
	// client-go logs through klog: kept for the secrets hygiene test, shown with -v. Set
	// before anything logs (klog.SetLogger is not safe to call later).
	klog.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(klogLogs, klogStderr{})), zap.Level(zapcore.Level(-10))).WithName("klog"))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // Start leaves what it started running when a later step fails
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restConfig = cfg

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 controllers.Scheme(),
		Cache:                  controllers.CacheOptions(""),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	policy = controllers.NewPolicy(ctrl.Log.WithName("policy"))
	probes = controllers.ProbeHandler(policy)
	if _, err := controllers.SetupKubernetes(mgr, policy, ""); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	k8s, err = client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	<-done
	return code
}

// klogLogs holds everything client-go logged through klog.
var klogLogs = &canary.Log{}

// klogStderr passes klog's output to stderr in verbose runs.
type klogStderr struct{}

func (klogStderr) Write(p []byte) (int, error) {
	if testing.Verbose() {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}

func zapLevel() int8 {
	if testing.Verbose() {
		return -1
	}
	return 2 // errors only
}

// eventually retries f until it returns nil or 20 seconds pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	// envtest runs no namespace controller, so the objects are deleted one kind at a time. A
	// test's AppCodes and appKeys are then free for the next test that uses them, and for
	// this one when run again (go test -count=2).
	t.Cleanup(func() {
		for _, o := range []client.Object{&authv1alpha1.APIBinding{}, &authv1alpha1.Credential{}, &authv1alpha1.CustomAuthorizer{}, &corev1.Secret{}} {
			if err := k8s.DeleteAllOf(context.Background(), o, client.InNamespace(ns.Name)); err != nil {
				t.Errorf("delete the %T objects of namespace %s: %v", o, ns.Name, err)
			}
		}
	})
	return ns.Name
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{authv1alpha1.CredentialSecretLabel: "true"}},
		StringData: data,
	}
}

func credential(ns, name, secretName string) *authv1alpha1.Credential {
	return &authv1alpha1.Credential{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       authv1alpha1.CredentialSpec{SecretRef: authv1alpha1.LocalObjectReference{Name: secretName}},
	}
}

func authorizer(ns, name string) *authv1alpha1.CustomAuthorizer {
	return &authv1alpha1.CustomAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authv1alpha1.CustomAuthorizerSpec{
			URL:             "http://authz.example.com/verify",
			IdentitySources: []authv1alpha1.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}},
		},
	}
}

func binding(ns, name, host, path string, mut func(*authv1alpha1.APIBindingSpec)) *authv1alpha1.APIBinding {
	b := &authv1alpha1.APIBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authv1alpha1.APIBindingSpec{
			Hosts:  []string{host},
			Routes: []authv1alpha1.Route{{Path: path}},
		},
	}
	mut(&b.Spec)
	return b
}

// route returns "<binding ref>" for the route matching host/path GET, "<ref> (deny)" for an
// invalid binding's route, or "" when nothing matches.
func route(host, path string) string {
	s := policy.Snapshot()
	if s == nil {
		return ""
	}
	r := s.Lookup(host, path, compile.MethodGET)
	switch {
	case r == nil:
		return ""
	case r.Binding.Invalid != "":
		return r.Binding.Ref + " (deny)"
	}
	return r.Binding.Ref
}

func wantRoute(t *testing.T, host, path, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("route %s%s", host, path), func() error {
		if got := route(host, path); got != want {
			return fmt.Errorf("matches %q, want %q", got, want)
		}
		return nil
	})
}

// wantCondition waits until obj carries condition typ with status and reason.
func wantCondition(t *testing.T, obj client.Object, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%T %s condition %s", obj, obj.GetName(), typ), func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		var conds []metav1.Condition
		var observed int64
		switch o := obj.(type) {
		case *authv1alpha1.Credential:
			conds, observed = o.Status.Conditions, o.Status.ObservedGeneration
		case *authv1alpha1.CustomAuthorizer:
			conds, observed = o.Status.Conditions, o.Status.ObservedGeneration
		case *authv1alpha1.APIBinding:
			conds, observed = o.Status.Conditions, o.Status.ObservedGeneration
		}
		c := meta.FindStatusCondition(conds, typ)
		if c == nil {
			return fmt.Errorf("no %s condition yet (%v)", typ, conds)
		}
		if c.Status != status || c.Reason != reason || c.ObservedGeneration != obj.GetGeneration() || observed != obj.GetGeneration() {
			return fmt.Errorf("%s=%s %s (generation %d, observed %d): %s", typ, c.Status, c.Reason, obj.GetGeneration(), c.ObservedGeneration, c.Message)
		}
		return nil
	})
}

func TestReadyz(t *testing.T) {
	eventually(t, "readyz", func() error {
		rec := httptest.NewRecorder()
		probes.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
		}
		return nil
	})
}

func TestGoodObjectsAreReady(t *testing.T) {
	ns := namespace(t)
	host := ns + ".example.com"
	sec := secret(ns, "keys", map[string]string{"appKey": ns + "-key", "appSecret": "0123456789abcdef"})
	cred := credential(ns, "app", "keys")
	cred.Labels = map[string]string{"tier": "gold"}
	az := authorizer(ns, "check")
	bd := binding(ns, "orders", host, "/orders", func(s *authv1alpha1.APIBindingSpec) {
		s.App = &authv1alpha1.AppAuth{CredentialSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}}
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "check"}
	})
	create(t, sec, cred, az, bd)

	wantRoute(t, host, "/orders/1", ns+"/orders")
	wantCondition(t, cred, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, az, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, bd, authv1alpha1.ConditionAccepted, metav1.ConditionTrue, authv1alpha1.ReasonAccepted)
	wantCondition(t, bd, authv1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, authv1alpha1.ReasonResolvedRefs)
	wantCondition(t, bd, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	eventually(t, "credential status fields", func() error {
		got := &authv1alpha1.Credential{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cred), got); err != nil {
			return err
		}
		if got.Status.AppKey != ns+"-key" || got.Status.BoundBindings != 1 {
			return fmt.Errorf("appKey %q bound %d", got.Status.AppKey, got.Status.BoundBindings)
		}
		return nil
	})
	s := policy.Snapshot()
	if c := s.CredentialByAppKey(ns + "-key"); c == nil || c.Ref != ns+"/app" || string(c.Secret()) != "0123456789abcdef" {
		t.Errorf("appKey index: %+v", c)
	}
	r := s.Lookup(host, "/orders", compile.MethodGET)
	if r.Binding.Authorizer == nil || r.Binding.Authorizer.Ref != ns+"/check" || !r.Binding.Binds(s.CredentialByAppKey(ns+"-key")) {
		t.Errorf("binding not compiled with its factors: %+v", r.Binding)
	}
}

// TestFalseConditions: each broken reference gives its documented condition, and the
// routes concerned deny instead of opening.
func TestFalseConditions(t *testing.T) {
	ns := namespace(t)
	host := ns + ".example.com"
	anon := func(s *authv1alpha1.APIBindingSpec) { s.Anonymous = true }

	// A dangling credential reference.
	dangling := binding(ns, "dangling", host, "/a", func(s *authv1alpha1.APIBindingSpec) {
		s.App = &authv1alpha1.AppAuth{Credentials: []string{"ghost"}}
	})
	// A missing authorizer.
	noAuthz := binding(ns, "no-authz", host, "/b", func(s *authv1alpha1.APIBindingSpec) {
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "nowhere"}
	})
	// A route conflict: the older binding keeps /c.
	first := binding(ns, "first", host, "/c", anon)
	create(t, dangling, noAuthz, first)
	wantRoute(t, host, "/c", ns+"/first")
	second := binding(ns, "second", host, "/c", anon)
	second.Spec.Routes = append(second.Spec.Routes, authv1alpha1.Route{Path: "/d"})
	// An appKey conflict: the older credential keeps the key.
	create(t, secret(ns, "k1", map[string]string{"appKey": ns + "-shared", "appSecret": "0123456789abcdef"}),
		secret(ns, "k2", map[string]string{"appKey": ns + "-shared", "appSecret": "fedcba9876543210"}),
		secret(ns, "short", map[string]string{"appKey": ns + "-short", "appSecret": "tooshort"}))
	older := credential(ns, "a-older", "k1") // creation times have 1s resolution; equal times fall back to name order
	create(t, older)
	wantCondition(t, older, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	newer := credential(ns, "b-newer", "k2")
	invalid := credential(ns, "invalid", "short")
	missing := credential(ns, "missing", "not-there")
	create(t, second, newer, invalid, missing)

	wantCondition(t, dangling, authv1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, authv1alpha1.ReasonCredentialNotFound)
	wantCondition(t, dangling, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonCredentialNotFound)
	wantCondition(t, noAuthz, authv1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, authv1alpha1.ReasonAuthorizerNotFound)
	wantCondition(t, second, authv1alpha1.ConditionAccepted, metav1.ConditionFalse, authv1alpha1.ReasonRouteConflict)
	wantCondition(t, first, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, newer, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonAppKeyConflict)
	wantCondition(t, older, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, invalid, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretInvalid)
	wantCondition(t, missing, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound)

	wantRoute(t, host, "/a", ns+"/dangling (deny)")
	wantRoute(t, host, "/b", ns+"/no-authz (deny)")
	wantRoute(t, host, "/c", ns+"/first")
	wantRoute(t, host, "/d", ns+"/second (deny)")
	if c := policy.Snapshot().CredentialByAppKey(ns + "-shared"); c == nil || c.Name() != "a-older" {
		t.Errorf("appKey owner: %+v", c)
	}

	// Fixing what was missing makes the objects ready.
	create(t, credential(ns, "ghost", "k1"), authorizer(ns, "nowhere"), secret(ns, "not-there", map[string]string{"appKey": ns + "-late", "appCodes": strings.Repeat("L", 40)}))
	wantCondition(t, dangling, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, noAuthz, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, missing, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantRoute(t, host, "/a", ns+"/dangling")
}

// TestEditsChangeTheSnapshot: editing or deleting each kind changes what is published.
func TestEditsChangeTheSnapshot(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	host := ns + ".example.com"
	sec := secret(ns, "keys", map[string]string{"appKey": ns + "-k1", "appSecret": "0123456789abcdef"})
	cred := credential(ns, "app", "keys")
	az := authorizer(ns, "check")
	bd := binding(ns, "api", host, "/v1", func(s *authv1alpha1.APIBindingSpec) {
		s.App = &authv1alpha1.AppAuth{Credentials: []string{"app"}}
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "check"}
	})
	create(t, sec, cred, az, bd)
	wantRoute(t, host, "/v1", ns+"/api")
	appKey := func(k string) func() error {
		return func() error {
			c := policy.Snapshot().CredentialByAppKey(k)
			if c == nil {
				return fmt.Errorf("no credential for %s", k)
			}
			return nil
		}
	}
	eventually(t, "credential indexed", appKey(ns+"-k1"))

	t.Run("Secret edit", func(t *testing.T) {
		patch := client.MergeFrom(sec.DeepCopy())
		sec.StringData = map[string]string{"appKey": ns + "-k2"}
		if err := k8s.Patch(ctx, sec, patch); err != nil {
			t.Fatal(err)
		}
		eventually(t, "new appKey", appKey(ns+"-k2"))
		if policy.Snapshot().CredentialByAppKey(ns+"-k1") != nil {
			t.Error("the old appKey is still accepted")
		}
	})
	t.Run("Credential edit", func(t *testing.T) {
		patch := client.MergeFrom(cred.DeepCopy())
		cred.Spec.Disabled = true
		if err := k8s.Patch(ctx, cred, patch); err != nil {
			t.Fatal(err)
		}
		eventually(t, "disabled credential leaves the index", func() error {
			if policy.Snapshot().CredentialByAppKey(ns+"-k2") != nil {
				return fmt.Errorf("still indexed")
			}
			return nil
		})
		wantCondition(t, cred, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonDisabled)
	})
	t.Run("CustomAuthorizer edit", func(t *testing.T) {
		patch := client.MergeFrom(az.DeepCopy())
		az.Spec.URL = "https://other.example.com/check"
		if err := k8s.Patch(ctx, az, patch); err != nil {
			t.Fatal(err)
		}
		eventually(t, "binding uses the new URL", func() error {
			r := policy.Snapshot().Lookup(host, "/v1", compile.MethodGET)
			if r == nil || r.Binding.Authorizer == nil || r.Binding.Authorizer.URL.String() != "https://other.example.com/check" {
				return fmt.Errorf("route %+v", r)
			}
			return nil
		})
	})
	t.Run("APIBinding edit", func(t *testing.T) {
		patch := client.MergeFrom(bd.DeepCopy())
		bd.Spec.Routes = []authv1alpha1.Route{{Path: "/v2"}}
		if err := k8s.Patch(ctx, bd, patch); err != nil {
			t.Fatal(err)
		}
		wantRoute(t, host, "/v2", ns+"/api")
		wantRoute(t, host, "/v1", "")
	})
	t.Run("CustomAuthorizer delete", func(t *testing.T) {
		if err := k8s.Delete(ctx, az); err != nil {
			t.Fatal(err)
		}
		wantRoute(t, host, "/v2", ns+"/api (deny)")
		wantCondition(t, bd, authv1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, authv1alpha1.ReasonAuthorizerNotFound)
	})
	t.Run("Secret delete", func(t *testing.T) {
		if err := k8s.Delete(ctx, sec); err != nil {
			t.Fatal(err)
		}
		wantCondition(t, cred, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound)
	})
	t.Run("Credential delete", func(t *testing.T) {
		if err := k8s.Delete(ctx, cred); err != nil {
			t.Fatal(err)
		}
		wantCondition(t, bd, authv1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, authv1alpha1.ReasonCredentialNotFound)
	})
	t.Run("APIBinding delete", func(t *testing.T) {
		if err := k8s.Delete(ctx, bd); err != nil {
			t.Fatal(err)
		}
		wantRoute(t, host, "/v2", "")
	})
}

// TestUnlabelledSecretIsInvisible: only labelled Secrets reach the policy; a Secret that
// gets the label is read, and one that loses it is gone as if deleted.
func TestUnlabelledSecretIsInvisible(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	s := secret(ns, "plain", map[string]string{"appKey": ns + "-plain", "appSecret": "0123456789abcdef"})
	s.Labels = nil
	cred := credential(ns, "app", "plain")
	create(t, s, cred)
	wantCondition(t, cred, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound)
	if policy.Snapshot().CredentialByAppKey(ns+"-plain") != nil {
		t.Error("an unlabelled Secret was used")
	}

	setLabel := func(value string) {
		t.Helper()
		patch := client.MergeFrom(s.DeepCopy())
		s.Labels = map[string]string{authv1alpha1.CredentialSecretLabel: value}
		if err := k8s.Patch(ctx, s, patch); err != nil {
			t.Fatal(err)
		}
	}
	usable := func(want bool) func() error {
		return func() error {
			if got := policy.Snapshot().CredentialByAppKey(ns+"-plain") != nil; got != want {
				return fmt.Errorf("credential found by its appKey = %t, want %t", got, want)
			}
			return nil
		}
	}
	setLabel("true")
	eventually(t, "the labelled Secret is read", usable(true))
	setLabel("false")
	eventually(t, "the Secret that lost the label is forgotten", usable(false))
	wantCondition(t, cred, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound)
}

// replica starts another Portcullis replica (its own manager, cache and policy) against the
// test cluster, as a second pod would.
func replica(t *testing.T, leaderElect bool) (*controllers.Policy, ctrl.Manager, *controllers.StatusWriter) {
	t.Helper()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  controllers.Scheme(),
		Cache:                   controllers.CacheOptions(""),
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		LeaderElection:          leaderElect,
		LeaderElectionID:        "portcullis-test",
		LeaderElectionNamespace: "default",
		LeaseDuration:           ptr(2 * time.Second),
		RenewDeadline:           ptr(time.Second),
		RetryPeriod:             ptr(200 * time.Millisecond),
		// One process holds several replicas here; in production each is its own pod.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := controllers.NewPolicy(ctrl.Log.WithName("replica"))
	w, err := controllers.SetupKubernetes(mgr, p, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica stopped with %v", err)
		}
	})
	return p, mgr, w
}

func ptr[T any](v T) *T { return &v }

// TestReadinessNeverLies starts a replica against a cluster that already holds many
// bindings and watches it come up: from the first instant it reports ready, every configured
// host is in its snapshot (never ROUTE_NOT_FOUND because the snapshot is still loading).
func TestReadinessNeverLies(t *testing.T) {
	ns := namespace(t)
	const n = 300
	for i := range n {
		create(t, binding(ns, fmt.Sprintf("b%d", i), fmt.Sprintf("h%d.%s.example.com", i, ns), "/", func(s *authv1alpha1.APIBindingSpec) { s.Anonymous = true }))
	}
	// The cluster has them all (the main replica sees them) before the new replica starts.
	wantRoute(t, fmt.Sprintf("h%d.%s.example.com", n-1, ns), "/", fmt.Sprintf("%s/b%d", ns, n-1))

	p, _, _ := replica(t, false)
	h := controllers.ProbeHandler(p)
	sawNotReady := false
	deadline := time.Now().Add(30 * time.Second)
	for !p.Ready() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code == http.StatusServiceUnavailable {
			sawNotReady = true
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never became ready")
		}
		time.Sleep(time.Millisecond)
	}
	s := p.Snapshot() // the snapshot in force at the moment readiness turned true
	var missing []string
	for i := range n {
		host := fmt.Sprintf("h%d.%s.example.com", i, ns)
		if s.Lookup(host, "/", compile.MethodGET) == nil {
			missing = append(missing, host)
		}
	}
	if len(missing) > 0 {
		t.Errorf("ready, but %d of %d configured hosts are not in the snapshot (e.g. %s)", len(missing), n, missing[0])
	}
	if !sawNotReady {
		t.Log("the replica was ready before the first probe; the not-ready phase was not observed")
	}
}

// TestEveryReplicaBuilds: with leader election, two replicas both serve the same
// decisions; only the elected one writes status.
func TestEveryReplicaBuilds(t *testing.T) {
	ns := namespace(t)
	host := ns + ".example.com"
	create(t, binding(ns, "api", host, "/", func(s *authv1alpha1.APIBindingSpec) { s.Anonymous = true }),
		binding(ns, "closed", host, "/closed", func(s *authv1alpha1.APIBindingSpec) {
			s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "missing"}
		}))
	p1, m1, w1 := replica(t, true)
	p2, m2, w2 := replica(t, true)
	for _, p := range []*controllers.Policy{p1, p2} {
		eventually(t, "replica snapshot", func() error {
			if !p.Ready() {
				return fmt.Errorf("not ready")
			}
			if p.Snapshot().Lookup(host, "/closed", compile.MethodGET) == nil {
				return fmt.Errorf("no route for %s", host)
			}
			return nil
		})
	}
	for _, path := range []string{"/", "/x", "/closed", "/closed/y"} {
		var got []string
		for _, p := range []*controllers.Policy{p1, p2} {
			e := &engine.Engine{Snapshot: p.Snapshot}
			d := e.Decide(context.Background(), &engine.Request{Method: "GET", Authority: host, Target: path})
			got = append(got, d.Code.String())
		}
		if got[0] != got[1] {
			t.Errorf("%s: the replicas decide %q and %q", path, got[0], got[1])
		}
	}
	var leader, follower *controllers.StatusWriter
	eventually(t, "one leader", func() error {
		var elected []*controllers.StatusWriter
		for i, m := range []ctrl.Manager{m1, m2} {
			select {
			case <-m.Elected():
				elected = append(elected, []*controllers.StatusWriter{w1, w2}[i])
			default:
			}
		}
		if len(elected) != 1 {
			return fmt.Errorf("%d replicas elected", len(elected))
		}
		leader, follower = elected[0], w1
		if leader == w1 {
			follower = w2
		}
		return nil
	})
	eventually(t, "the leader handles statuses", func() error {
		if leader.Attempts() == 0 {
			return fmt.Errorf("no status handled yet")
		}
		return nil
	})
	if n := follower.Attempts(); n != 0 {
		t.Errorf("the replica that is not elected handled %d statuses", n)
	}
}

// laggingClient is a cache that has not seen the latest writes of one object: it serves the
// copy in stale for key, and reads everything else from the API server.
type laggingClient struct {
	client.Client
	key   client.ObjectKey
	stale *authv1alpha1.Credential
}

func (c *laggingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if cred, ok := obj.(*authv1alpha1.Credential); ok && key == c.key && c.stale != nil {
		c.stale.DeepCopyInto(cred)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// TestStatusWriterReadsPastALaggingCache: a status that changes back before the cache has
// seen the writer's last update of the object is still written. Judged by the cache, the
// change back would look like no change, and the object would keep the status just written.
func TestStatusWriterReadsPastALaggingCache(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	cred := credential(ns, "app", "keys") // no such Secret
	create(t, cred)
	// The package's replica writes SecretNotFound; nothing makes it write again.
	wantCondition(t, cred, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound)
	key := client.ObjectKeyFromObject(cred)
	var seen authv1alpha1.Credential
	if err := k8s.Get(ctx, key, &seen); err != nil {
		t.Fatal(err)
	}
	notFound := *meta.FindStatusCondition(seen.Status.Conditions, authv1alpha1.ConditionReady)
	status := func(c metav1.Condition) compile.ObjectStatus {
		return compile.ObjectStatus{Key: compile.ObjectKey{Kind: compile.KindCredential, NamespacedName: key}, UID: seen.UID,
			ObservedGeneration: seen.Generation, Conditions: []metav1.Condition{c}}
	}
	cache := &laggingClient{Client: k8s, key: key, stale: &seen} // it keeps showing SecretNotFound
	w := controllers.NewStatusWriter(cache, k8s, controllers.NewPolicy(ctrl.Log.WithName("lagging")), ctrl.Log.WithName("lagging"))

	for _, step := range []struct {
		st     compile.ObjectStatus
		result string
	}{
		{status(metav1.Condition{Type: authv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonValid, Message: "ready"}), "written"},
		{status(notFound), "written"}, // back to exactly what the lagging cache shows
	} {
		result, err := w.Write(ctx, step.st)
		if err != nil || result != step.result {
			t.Fatalf("writing Ready=%s: %q, %v; want %q", step.st.Conditions[0].Status, result, err, step.result)
		}
		var got authv1alpha1.Credential
		if err := k8s.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady); c == nil || c.Status != step.st.Conditions[0].Status {
			t.Fatalf("after writing Ready=%s the API server holds %+v", step.st.Conditions[0].Status, c)
		}
	}
}
