package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// k8sClient talks to the package's envtest kube-apiserver, which has the CRDs from
// config/crd/bases installed. It is nil when envtest is not available (see skipReason).
var k8sClient client.Client

// skipReason is set when the package's tests cannot run against a real API server.
var skipReason string

// TestMain starts one kube-apiserver and etcd for the whole package, installs the generated
// CRDs and stops everything when the tests are done.
func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		skipReason = "KUBEBUILDER_ASSETS is unset: run `make envtest` and set KUBEBUILDER_ASSETS=bin/k8s (the Makefile does both)"
		os.Exit(m.Run())
	}
	os.Exit(runWithEnvtest(m))
}

func runWithEnvtest(m *testing.M) int {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // Start leaves what it started running when a later step fails
		fmt.Fprintf(os.Stderr, "start envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintf(os.Stderr, "add client-go scheme: %v\n", err)
		return 1
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		fmt.Fprintf(os.Stderr, "add portcullis scheme: %v\n", err)
		return 1
	}
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "create client: %v\n", err)
		return 1
	}
	return m.Run()
}

// requireEnvtest skips the test when no API server is available.
func requireEnvtest(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
