// Package controlplane tests Portcullis against control-plane faults: a real kube-apiserver
// and etcd (envtest) that the tests stop and start again with the same data and port, while
// Portcullis runs in process, wired as `portcullis serve` wires it.
package controlplane

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/portcullis-dev/portcullis/controllers"
)

var (
	env        *envtest.Environment
	restConfig *rest.Config
	k8s        client.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test` (it builds kube-apiserver and etcd into bin/k8s)")
		return 1
	}
	level := zapcore.Level(2) // errors only: the outages make client-go log every refused connection
	if testing.Verbose() {
		level = zapcore.Level(-1)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	dir, err := os.MkdirTemp("", "portcullis-controlplane-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	// Fixed directories: etcd keeps its data and the API server its certificates (so clients
	// keep trusting it) across a stop and start; both keep their ports once chosen.
	env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// A kube-apiserver asked to stop keeps serving the watches already open until its
		// request timeout (60s) before it exits; after this it is killed, as in a crash, and
		// stopControlPlane accepts that.
		ControlPlaneStopTimeout: 2 * time.Second,
		ControlPlane: envtest.ControlPlane{
			Etcd:      &envtest.Etcd{DataDir: filepath.Join(dir, "etcd")},
			APIServer: &envtest.APIServer{CertDir: filepath.Join(dir, "apiserver")},
		},
	}
	for _, d := range []string{env.ControlPlane.Etcd.DataDir, env.ControlPlane.APIServer.CertDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	start := time.Now()
	restConfig, err = env.Start()
	if err != nil {
		_ = env.Stop() // Start leaves what it started running when a later step fails
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "control plane started in %v\n", time.Since(start).Round(time.Millisecond))
	}
	k8s, err = client.New(restConfig, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	return m.Run()
}

// stopControlPlane stops the API server, then etcd, as an outage would; it returns when the
// outage began.
func stopControlPlane(t *testing.T) time.Time {
	t.Helper()
	start := time.Now()
	if err := env.ControlPlane.APIServer.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process kube-apiserver to stop") {
		t.Fatalf("stop kube-apiserver: %v", err)
	}
	apiserver := time.Since(start)
	if err := env.ControlPlane.Etcd.Stop(); err != nil && !strings.Contains(err.Error(), "timeout waiting for process etcd to stop") {
		t.Fatalf("stop etcd: %v", err)
	}
	t.Logf("control plane stopped in %v (kube-apiserver %v)", time.Since(start).Round(time.Millisecond), apiserver.Round(time.Millisecond))
	return start
}

// startControlPlane starts etcd on its old data and port, then the API server on its old
// port and certificates, and waits until the API server answers.
func startControlPlane(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := env.ControlPlane.Etcd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	if err := env.ControlPlane.APIServer.Start(); err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Logf("control plane started again in %v", time.Since(start).Round(time.Millisecond))
}

// eventually retries f until it returns nil or the deadline passes; it returns how long
// that took.
func eventually(t *testing.T, within time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, within)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
