package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

func newTestQueue() workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
}

// TestSecretStore feeds the Secret watch's store the calls a reflector makes (a list, watch
// events, a relist after a lost watch) and checks what the policy then serves, and that the
// policy key is enqueued exactly when the policy changed.
func TestSecretStore(t *testing.T) {
	keys := func(rv, appKey string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "keys", ResourceVersion: rv, UID: "u-keys"},
			Data:       map[string][]byte{"appKey": []byte(appKey), "appSecret": []byte("0123456789abcdef")},
		}
	}
	p := NewPolicy(logr.Discard())
	cred := &authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", ResourceVersion: "1", UID: "u-app"}}
	cred.Spec.SecretRef.Name = "keys"
	p.Set(cred)
	src := &secretSource{policy: p, synced: make(chan struct{})}
	q := newTestQueue()
	defer q.ShutDown()
	store := &secretStore{src: src, queue: q}

	steps := []struct {
		name    string
		call    func() error
		enqueue bool
		appKey  string // the appKey the credential is found by; empty: none
	}{
		{"first list", func() error { return store.Replace([]any{keys("1", "k1")}, "1") }, true, "k1"},
		{"the same Secret again", func() error { return store.Update(keys("1", "k1")) }, false, "k1"},
		{"edited", func() error { return store.Update(keys("2", "k2")) }, true, "k2"},
		{"relist without it: deleted while the watch was lost", func() error { return store.Replace(nil, "3") }, true, ""},
		{"created again", func() error { return store.Add(keys("4", "k4")) }, true, "k4"},
		{"deleted, final state unknown", func() error {
			return store.Delete(toolscache.DeletedFinalStateUnknown{Key: "ns/keys", Obj: keys("4", "k4")})
		}, true, ""},
		{"deleted again", func() error { return store.Delete(keys("4", "k4")) }, false, ""},
	}
	for _, st := range steps {
		if err := st.call(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := q.Len() == 1; got != st.enqueue {
			t.Errorf("%s: policy key enqueued = %t, want %t", st.name, got, st.enqueue)
		}
		for q.Len() > 0 {
			k, _ := q.Get()
			q.Done(k)
		}
		p.Rebuild(true)
		snap := p.Snapshot()
		for _, k := range []string{"k1", "k2", "k4"} {
			found := snap.CredentialByAppKey(k) != nil
			if want := k == st.appKey; found != want {
				t.Errorf("%s: credential found by appKey %q = %t, want %t", st.name, k, found, want)
			}
		}
	}

	for _, call := range []func() error{
		func() error { return store.Update(cred) },
		func() error { return store.Delete(cred) },
		func() error { return store.Replace([]any{cred}, "5") },
	} {
		if err := call(); err == nil {
			t.Error("a Credential handed to the Secret store: no error")
		}
	}
}

// TestSecretSourceWaitsForTheFirstList: the controller starts its workers after WaitForSync,
// which must not return before the first list is in the policy.
func TestSecretSourceWaitsForTheFirstList(t *testing.T) {
	src := &secretSource{policy: NewPolicy(logr.Discard()), synced: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := src.WaitForSync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForSync before any list = %v, want %v", err, context.DeadlineExceeded)
	}
	q := newTestQueue()
	defer q.ShutDown()
	store := &secretStore{src: src, queue: q}
	for range 2 { // a relist must not close the channel twice
		if err := store.Replace(nil, "1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.WaitForSync(context.Background()); err != nil {
		t.Fatalf("WaitForSync after the first list = %v", err)
	}
}
