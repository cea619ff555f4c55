package charttest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const fieldOwner = client.FieldOwner("charttest")

// Kinds whose CRDs a bare API server does not have; the chart renders them for clusters that do.
var foreignGroups = map[string]bool{"monitoring.coreos.com": true}

// Every object of the default and the custom render is accepted by a real kube-apiserver
// (schema, defaulting, validation, CEL): the chart's CRDs are applied for real (the API server
// cannot dry-run objects of kinds it does not know), everything else with a server-side
// dry-run apply.
func TestServerSideDryRun(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test` (it builds kube-apiserver and etcd into bin/k8s), or set it to bin/k8s")
	}
	renders := map[string]string{
		"default": render(t),
		"custom":  render(t, "--values", customValues),
	}

	// No CRDs: the chart's own must install them.
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // Start leaves what it started running when a later step fails
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	for _, name := range []string{"default", "custom"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			applyRender(ctx, t, cfg, objects(t, renders[name]))
		})
	}
}

func applyRender(ctx context.Context, t *testing.T, cfg *rest.Config, objs []*unstructured.Unstructured) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	var crds, others []*unstructured.Unstructured
	namespaces := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
			continue
		}
		others = append(others, o)
		if ns := o.GetNamespace(); ns != "" {
			namespaces[ns] = true
		}
	}
	if len(crds) == 0 {
		t.Fatal("the render has no CustomResourceDefinitions")
	}
	for _, crd := range crds {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(crd), fieldOwner, client.ForceOwnership); err != nil {
			t.Fatalf("apply %s: %v", describe(crd), err)
		}
	}
	for _, crd := range crds {
		waitEstablished(ctx, t, c, crd.GetName())
	}
	for ns := range namespaces {
		err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}

	// A new client: its REST mapper discovers the kinds the CRDs just added.
	c, err = client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, o := range others {
		if foreignGroups[o.GroupVersionKind().Group] {
			t.Logf("skip %s: the test API server has no %s CRDs", describe(o), o.GroupVersionKind().Group)
			continue
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), fieldOwner, client.ForceOwnership, client.DryRunAll); err != nil {
			t.Errorf("server-side dry-run apply of %s: %v", describe(o), err)
			continue
		}
		applied++
		// Dry-run means nothing was stored.
		probe := &unstructured.Unstructured{}
		probe.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), probe); !apierrors.IsNotFound(err) {
			t.Errorf("%s exists after a dry-run apply (get: %v)", describe(o), err)
		}
	}
	if applied == 0 {
		t.Fatal("nothing was applied")
	}
	t.Logf("%d CRDs applied, %d objects accepted by a server-side dry-run apply", len(crds), applied)
}

func waitEstablished(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	for {
		err := c.Get(ctx, client.ObjectKey{Name: name}, crd)
		if err == nil && condition(crd, "Established") == "True" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CRD %s not Established: %v (last error %v)", name, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// condition is the status of status.conditions[type=typ] of o, or "".
func condition(o *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprint(m["status"])
		}
	}
	return ""
}
