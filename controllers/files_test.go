package controllers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// TestRunFilesReload follows a directory through RunFiles, which prepares each object while
// the directory is decoded and keeps only the name of an object it already holds unchanged:
// what a reload leaves out is deleted, what it changes is rebuilt, and what it keeps stays.
func TestRunFilesReload(t *testing.T) {
	// secretYAML's Secret has no appSecret, which a credential needs.
	secretYAML := func(name, appKey string) string {
		return secretYAML(name, appKey) + "  appSecret: 0123456789abcdef0123456789abcdef\n"
	}
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	writeFile(t, path("a.yaml"), credentialYAML("a", "keys-a")+"---\n"+secretYAML("keys-a", "key-a"))
	writeFile(t, path("b.yaml"), credentialYAML("b", "keys-b")+"---\n"+secretYAML("keys-b", "key-b"))
	// A Secret without the label is left out, as a cluster's informers would.
	writeFile(t, path("c.yaml"), "apiVersion: v1\nkind: Secret\nmetadata: {name: unlabelled}\nstringData: {appKey: key-c}\n")

	policy := NewPolicy(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunFiles(ctx, dir, 10*time.Millisecond, policy, logr.Discard()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunFiles returned %v", err)
		}
	})

	// appKeys lists which of the appKeys the published snapshot knows.
	appKeys := func() map[string]bool {
		got := map[string]bool{}
		if snap := policy.Snapshot(); snap != nil {
			for _, k := range []string{"key-a", "key-a2", "key-b"} {
				got[k] = snap.CredentialByAppKey(k) != nil
			}
		}
		return got
	}
	secret := func(name string) compile.ObjectKey {
		return compile.ObjectKey{Kind: compile.KindSecret, NamespacedName: types.NamespacedName{Namespace: "default", Name: name}}
	}
	wait := func(what string, want map[string]bool) {
		t.Helper()
		deadline := time.Now().Add(watchTimeout)
		for {
			got := appKeys()
			if policy.Ready() && got["key-a"] == want["key-a"] && got["key-a2"] == want["key-a2"] && got["key-b"] == want["key-b"] {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the snapshot knows the appKeys %v, want %v", what, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	wait("first load", map[string]bool{"key-a": true, "key-b": true})
	if policy.Has(secret("unlabelled")) {
		t.Error("the unlabelled Secret was applied")
	}
	a := policy.Snapshot().CredentialByAppKey("key-a")

	// b.yaml is removed, and another file changes: a stays as it was.
	if err := os.Remove(path("b.yaml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path("c.yaml"), "# now empty\n")
	wait("b removed", map[string]bool{"key-a": true})
	if policy.Has(secret("keys-b")) {
		t.Error("Secret keys-b is still held after its file was removed")
	}
	if got := policy.Snapshot().CredentialByAppKey("key-a"); got != a {
		t.Error("credential a was compiled again although it did not change")
	}

	// a's Secret changes.
	writeFile(t, path("a.yaml"), credentialYAML("a", "keys-a")+"---\n"+secretYAML("keys-a", "key-a2"))
	wait("a's appKey changed", map[string]bool{"key-a2": true})
}
