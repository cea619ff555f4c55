package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

const validDir = "testdata/files/valid"

// describe names an object as "Kind namespace/name".
func describe(obj client.Object) string {
	return fmt.Sprintf("%s %s/%s", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName())
}

func describeAll(objs []client.Object) []string {
	out := make([]string, len(objs))
	for i, obj := range objs {
		out[i] = describe(obj)
	}
	return out
}

func byName(t *testing.T, objs []client.Object) map[string]client.Object {
	t.Helper()
	m := make(map[string]client.Object, len(objs))
	for _, obj := range objs {
		m[describe(obj)] = obj
	}
	return m
}

func mustLoad(t *testing.T, dir string) []client.Object {
	t.Helper()
	objs, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir(%s): %v", dir, err)
	}
	return objs
}

// copyDir copies the regular files of src (not subdirectories) into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dst, e.Name()), string(data))
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic saves the way editors and sed -i do: a temporary file renamed over the target.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, path, from, to string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), from) {
		t.Fatalf("%s does not contain %q", path, from)
	}
	writeFile(t, path, strings.Replace(string(data), from, to, 1))
}

func TestLoadDir(t *testing.T) {
	objs := mustLoad(t, validDir)

	// Files in lexical order, documents in file order, List items in place; empty and
	// comment-only documents, hidden files, editor files, other extensions and
	// subdirectories skipped.
	want := []string{
		"Secret shop/data-keys",
		"Secret shop/string-keys",
		"Secret default/mixed-keys",
		"Credential shop/mobile-app",
		"Credential default/legacy",
		"CustomAuthorizer shop/token-check",
		"APIBinding shop/orders",
		"APIBinding shop/health",
		"Credential shop/partner",
		"Secret shop/partner-keys",
	}
	if got := describeAll(objs); !slices.Equal(got, want) {
		t.Fatalf("objects:\n got %q\nwant %q", got, want)
	}

	uids := map[string]string{}
	for i, obj := range objs {
		t.Run(describe(obj), func(t *testing.T) {
			wantGV := authv1alpha1.GroupVersion.String()
			if _, ok := obj.(*corev1.Secret); ok {
				wantGV = "v1"
			}
			if got := obj.GetObjectKind().GroupVersionKind().GroupVersion().String(); got != wantGV {
				t.Errorf("apiVersion = %q, want %q", got, wantGV)
			}
			if obj.GetUID() == "" || obj.GetUID() == "11111111-2222-3333-4444-555555555555" {
				t.Errorf("uid = %q, want one derived from kind, namespace and name", obj.GetUID())
			}
			if other, dup := uids[string(obj.GetUID())]; dup {
				t.Errorf("uid %s is also the uid of %s", obj.GetUID(), other)
			}
			uids[string(obj.GetUID())] = describe(obj)
			if obj.GetGeneration() != 1 {
				t.Errorf("generation = %d, want 1", obj.GetGeneration())
			}
			if rv := obj.GetResourceVersion(); len(rv) != 16 || rv == "42" {
				t.Errorf("resourceVersion = %q, want a 16-digit content hash", rv)
			}
			wantCreated := time.Date(2000, 1, 1, 0, 0, i, 0, time.UTC)
			if got := obj.GetCreationTimestamp().Time; !got.Equal(wantCreated) {
				t.Errorf("creationTimestamp = %s, want %s", got, wantCreated)
			}
		})
	}

	byKey := byName(t, objs)
	cred := byKey["Credential shop/mobile-app"].(*authv1alpha1.Credential)
	if !reflect.DeepEqual(cred.Status, authv1alpha1.CredentialStatus{}) {
		t.Errorf("status from the file was kept: %+v", cred.Status)
	}
	if cred.Spec.SecretRef.Name != "data-keys" || cred.Labels["tier"] != "gold" {
		t.Errorf("credential decoded wrongly: %+v", cred)
	}
	authz := byKey["CustomAuthorizer shop/token-check"].(*authv1alpha1.CustomAuthorizer)
	if authz.Spec.Timeout == nil || authz.Spec.Timeout.Duration != 3*time.Second || len(authz.Spec.IdentitySources) != 2 {
		t.Errorf("authorizer decoded wrongly from JSON: %+v", authz.Spec)
	}
	binding := byKey["APIBinding shop/orders"].(*authv1alpha1.APIBinding)
	if binding.Spec.Routes[0].Match != "" {
		t.Errorf("route match = %q: CRD defaults must be left to the consumer", binding.Spec.Routes[0].Match)
	}
}

func TestLoadDirSecrets(t *testing.T) {
	byKey := byName(t, mustLoad(t, validDir))
	tests := []struct {
		name string
		want map[string]string
	}{
		{"Secret shop/data-keys", map[string]string{"appKey": "data-app-key", "appSecret": "data-app-secret-0001"}},
		{"Secret shop/string-keys", map[string]string{"appKey": "string-app-key", "appSecret": "string-app-secret-0001"}},
		{"Secret default/mixed-keys", map[string]string{"appKey": "new-key", "appSecret": "data-app-secret-0001"}},
		{"Secret shop/partner-keys", map[string]string{"appKey": "partner-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, ok := byKey[tt.name].(*corev1.Secret)
			if !ok {
				t.Fatalf("no %s", tt.name)
			}
			got := map[string]string{}
			for k, v := range secret.Data {
				got[k] = string(v)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("data = %q, want %q", got, tt.want)
			}
			if secret.StringData != nil {
				t.Errorf("stringData = %q, want it merged into data and cleared", secret.StringData)
			}
		})
	}
}

func TestLoadDirDeterministic(t *testing.T) {
	first, second := mustLoad(t, validDir), mustLoad(t, validDir)
	if !reflect.DeepEqual(first, second) {
		t.Fatal("two loads of the same directory differ")
	}
}

func TestLoadDirEdits(t *testing.T) {
	type stamp struct {
		uid, rv string
		created time.Time
	}
	stamps := func(objs []client.Object) map[string]stamp {
		m := map[string]stamp{}
		for _, obj := range objs {
			m[describe(obj)] = stamp{string(obj.GetUID()), obj.GetResourceVersion(), obj.GetCreationTimestamp().Time}
		}
		return m
	}
	before := stamps(mustLoad(t, validDir))

	tests := []struct {
		name string
		edit func(t *testing.T, dir string)
		// changedRV are the objects whose resourceVersion must change; every other keeps it.
		changedRV []string
		// moved are the objects whose creationTimestamp changes (and so their resourceVersion).
		moved []string
		check func(t *testing.T, objs map[string]client.Object)
	}{{
		name: "comments and formatting only",
		edit: func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "30-bindings.yaml"), "  hosts: [api.example.com, \"*.shop.example.com\"]",
				"  # reformatted\n  hosts:\n    - api.example.com\n    - '*.shop.example.com'")
		},
	}, {
		name: "one object edited",
		edit: func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "30-bindings.yaml"), "/orders/export", "/orders/report")
		},
		changedRV: []string{"APIBinding shop/orders"},
	}, {
		name: "a label edited",
		edit: func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "10-credentials.yml"), "tier: gold\n  #", "tier: silver\n  #")
		},
		changedRV: []string{"Credential shop/mobile-app"},
	}, {
		name: "a file renamed to load earlier",
		edit: func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "40-list.yaml"), filepath.Join(dir, "05-list.yaml")); err != nil {
				t.Fatal(err)
			}
		},
		moved: []string{
			"Credential shop/partner", "Secret shop/partner-keys", "Credential shop/mobile-app",
			"Credential default/legacy", "CustomAuthorizer shop/token-check",
			"APIBinding shop/orders", "APIBinding shop/health",
		},
		check: func(t *testing.T, objs map[string]client.Object) {
			// The compiler's "older wins" follows the directory order.
			partner, mobile := objs["Credential shop/partner"], objs["Credential shop/mobile-app"]
			if !partner.GetCreationTimestamp().Time.Before(mobile.GetCreationTimestamp().Time) {
				t.Error("an object earlier in the directory must be older")
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, validDir)
			tt.edit(t, dir)
			objs := mustLoad(t, dir)
			if tt.check != nil {
				tt.check(t, byName(t, objs))
			}
			after := stamps(objs)
			if len(after) != len(before) {
				t.Fatalf("got %d objects, want %d", len(after), len(before))
			}
			for name, b := range before {
				a, ok := after[name]
				if !ok {
					t.Errorf("%s is gone", name)
					continue
				}
				if a.uid != b.uid {
					t.Errorf("%s: uid changed from %s to %s", name, b.uid, a.uid)
				}
				moved := slices.Contains(tt.moved, name)
				if moved == a.created.Equal(b.created) {
					t.Errorf("%s: creationTimestamp %s -> %s, moved = %v", name, b.created, a.created, moved)
				}
				changed := moved || slices.Contains(tt.changedRV, name)
				if changed == (a.rv == b.rv) {
					t.Errorf("%s: resourceVersion %s -> %s, want changed = %v", name, b.rv, a.rv, changed)
				}
			}
		})
	}
}

func TestLoadDirErrors(t *testing.T) {
	const base = "testdata/files/errors/"
	tests := []struct {
		dir string
		// want are the reported problems, in order; each line of the error starts with one.
		want []string
	}{{
		dir: "unknown-kind",
		want: []string{
			base + `unknown-kind/objects.yaml:10: Gateway "web": unknown kind gateway.networking.k8s.io/v1 Gateway; want auth.portcullis.dev/v1alpha1`,
			base + `unknown-kind/objects.yaml:15: Credential "shop/future": unknown kind auth.portcullis.dev/v1beta1 Credential`,
		},
	}, {
		dir: "unknown-field",
		want: []string{
			base + `unknown-field/binding.yaml:7: APIBinding "shop/orders": unknown field "metadata.lables"`,
			base + `unknown-field/binding.yaml:14: APIBinding "shop/orders": unknown field "spec.hostz"`,
			base + `unknown-field/binding.yaml:20: APIBinding "shop/orders": unknown field "spec.routes[1].mathc"`,
		},
	}, {
		dir: "bad-base64",
		want: []string{
			base + `bad-base64/secret.yaml:8: Secret "shop/keys": data.appSecret: invalid base64`,
			base + `bad-base64/secret.yaml:9: Secret "shop/keys": data.tls.crt: invalid base64`,
		},
	}, {
		dir: "invalid-yaml",
		want: []string{
			base + `invalid-yaml/broken.yaml:12: invalid YAML: mapping values are not allowed in this context`,
			base + `invalid-yaml/broken.yaml:21: invalid YAML: key "name" already set in map`,
		},
	}, {
		dir: "duplicate",
		want: []string{
			base + `duplicate/b.yaml:2: Credential "default/mobile-app": duplicate object, already defined at ` +
				base + `duplicate/a.yaml:1`,
		},
	}, {
		dir: "wrong-type",
		want: []string{
			base + `wrong-type/binding.yaml:6: APIBinding "scalar-hosts": spec.hosts: got string, want list`,
			base + `wrong-type/binding.yaml:21: APIBinding "scalar-methods": spec.routes.methods: got string, want list`,
			base + `wrong-type/binding.yaml:24: CustomAuthorizer "bad-timeout": time: invalid duration "soon"`,
		},
	}, {
		dir: "list-item",
		want: []string{
			base + `list-item/list.yaml:14: Credential "typo": unknown field "spec.secretRef.nam"`,
			base + `list-item/list.yaml:15: Secret "no-api-version": apiVersion and kind are required`,
		},
	}, {
		dir: "malformed",
		want: []string{
			base + `malformed/objects.yaml:2: apiVersion and kind are required`,
			base + `malformed/objects.yaml:8: Secret: metadata.name is required (generateName is not supported`,
			base + `malformed/objects.yaml:14: Secret "Shop/Mobile_Keys": metadata.name: a lowercase RFC 1123 subdomain`,
			base + `malformed/objects.yaml:15: Secret "Shop/Mobile_Keys": metadata.namespace: a lowercase RFC 1123 label`,
			base + `malformed/objects.yaml:17: Secret "Shop/Mobile_Keys": metadata.labels: Invalid value: "bad label"`,
			base + `malformed/objects.yaml:19: document is not an object`,
			base + `malformed/objects.yaml:20: content after the document separator is not supported`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			objs, err := LoadDir(base + tt.dir)
			if err == nil {
				t.Fatalf("LoadDir succeeded with %q", describeAll(objs))
			}
			if objs != nil {
				t.Errorf("LoadDir returned objects with an error: %q", describeAll(objs))
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], tt.want[i])
				}
			}
			var loadErr *LoadError
			if !errors.As(err, &loadErr) || loadErr.File == "" || loadErr.Line == 0 {
				t.Errorf("error %#v is not a placed *LoadError", err)
			}
		})
	}
}

func TestLoadDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("LoadDir(%s) = %v, want an error naming the directory", dir, err)
	}
}

// The samples a user is told to kubectl apply also load as a policy directory.
func TestLoadDirSamples(t *testing.T) {
	const samples = "../config/samples"
	if _, err := os.Stat(samples); err != nil {
		t.Skipf("no samples: %v", err)
	}
	if objs := mustLoad(t, samples); len(objs) == 0 {
		t.Fatal("no objects in the samples")
	}
}

// Watching.

const watchTimeout = 5 * time.Second

func credentialYAML(name, secret string) string {
	return fmt.Sprintf(`apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata:
  name: %s
spec:
  secretRef:
    name: %s
`, name, secret)
}

func authorizerYAML(name, url string) string {
	return fmt.Sprintf(`apiVersion: auth.portcullis.dev/v1alpha1
kind: CustomAuthorizer
metadata:
  name: %s
spec:
  url: %s
`, name, url)
}

func secretYAML(name, appKey string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
  labels: {auth.portcullis.dev/credential: "true"}
stringData:
  appKey: %s
`, name, appKey)
}

// A Credential with an unknown field on line 6.
const brokenCredentialYAML = `apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata:
  name: a
spec:
  secretReff:
    name: keys
`

// keepObject is a FileSource's Convert that applies the objects themselves.
func keepObject(o client.Object) (client.Object, bool) { return o, true }

// runningSource is a FileSource started on a directory, with what it applied and logged.
type runningSource struct {
	applied  chan []client.Object
	logs     chan string
	last     []client.Object // what was applied last
	rejected atomic.Int32    // calls of Rejected
}

func startSource(t *testing.T, dir string) *runningSource {
	t.Helper()
	r := &runningSource{applied: make(chan []client.Object, 100), logs: make(chan string, 100)}
	src := &FileSource[client.Object]{
		Dir:     dir,
		Convert: keepObject,
		Log: funcr.New(func(prefix, args string) {
			select {
			case r.logs <- args:
			default:
			}
		}, funcr.Options{}),
		Apply:    func(objs []client.Object) { r.applied <- objs },
		Rejected: func(error) { r.rejected.Add(1) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start returned %v after the context ended, want nil", err)
			}
		case <-time.After(watchTimeout):
			t.Error("Start did not return after the context ended")
		}
	})
	return r
}

// waitApplied waits until Apply is called with exactly the objects named in want.
// Intermediate calls (a reload in the middle of a non-atomic write) are allowed.
func (r *runningSource) waitApplied(t *testing.T, want []string) {
	t.Helper()
	timeout := time.After(watchTimeout)
	for {
		select {
		case objs := <-r.applied:
			r.last = objs
			if slices.Equal(describeAll(objs), want) {
				return
			}
		case <-timeout:
			t.Fatalf("Apply was not called with %q; last applied %q", want, describeAll(r.last))
		}
	}
}

// waitKept waits until a reload fails with an error containing want, and checks that
// Apply was not called: the last good policy stays.
func (r *runningSource) waitKept(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(watchTimeout)
	for {
		select {
		case line := <-r.logs:
			if !strings.Contains(line, "Keeping the last good policy") {
				continue
			}
			if !strings.Contains(line, want) {
				t.Fatalf("reload failed with %s, want an error containing %q", line, want)
			}
			if r.rejected.Load() == 0 {
				t.Error("Rejected was not called for the failed reload")
			}
			select {
			case objs := <-r.applied:
				t.Fatalf("Apply was called with %q after a failed reload", describeAll(objs))
			default:
			}
			return
		case objs := <-r.applied:
			t.Fatalf("Apply was called with %q, want the reload to fail with %q", describeAll(objs), want)
		case <-timeout:
			t.Fatalf("no failed reload logged with %q", want)
		}
	}
}

func TestFileSourceWatch(t *testing.T) {
	type step struct {
		do func(t *testing.T, dir string)
		// Either Apply is called with the objects named in want (and then check, if set, runs
		// on them), or the reload fails with an error containing kept and Apply is not called.
		want  []string
		check func(t *testing.T, objs []client.Object)
		kept  string
	}
	type watchCase struct {
		name  string
		files map[string]string
		// initial names the objects of the first load; default: Credential default/a.
		initial []string
		steps   []step
	}
	tests := []watchCase{{
		name:  "a new file is written",
		files: map[string]string{"a.yaml": credentialYAML("a", "keys")},
		steps: []step{{
			do: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "b.yaml"), credentialYAML("b", "keys"))
			},
			want: []string{"Credential default/a", "Credential default/b"},
		}, {
			do: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"Credential default/b"},
		}},
	}, {
		name:  "a file is replaced by rename",
		files: map[string]string{"a.yaml": credentialYAML("a", "keys")},
		steps: []step{{
			do: func(t *testing.T, dir string) {
				writeAtomic(t, filepath.Join(dir, "a.yaml"), credentialYAML("a", "keys")+"---\n"+credentialYAML("c", "keys"))
			},
			want: []string{"Credential default/a", "Credential default/c"},
		}},
	}, {
		name:  "a broken edit keeps the last good policy until it is fixed",
		files: map[string]string{"a.yaml": credentialYAML("a", "keys")},
		steps: []step{{
			do: func(t *testing.T, dir string) {
				writeAtomic(t, filepath.Join(dir, "a.yaml"), brokenCredentialYAML)
			},
			kept: `a.yaml:6: Credential \"a\": unknown field \"spec.secretReff\"`,
		}, {
			do: func(t *testing.T, dir string) {
				writeAtomic(t, filepath.Join(dir, "a.yaml"), credentialYAML("a", "fixed-keys"))
			},
			want: []string{"Credential default/a"},
			check: func(t *testing.T, objs []client.Object) {
				if got := objs[0].(*authv1alpha1.Credential).Spec.SecretRef.Name; got != "fixed-keys" {
					t.Errorf("secretRef = %q, want the fixed one", got)
				}
			},
		}},
	}, {
		name:    "generations follow spec changes",
		files:   map[string]string{"a.yaml": authorizerYAML("a", "http://one")},
		initial: []string{"CustomAuthorizer default/a"},
		steps: []step{{
			do: func(t *testing.T, dir string) {
				writeAtomic(t, filepath.Join(dir, "a.yaml"), authorizerYAML("a", "http://two"))
			},
			want:  []string{"CustomAuthorizer default/a"},
			check: wantGeneration(2),
		}, {
			do: func(t *testing.T, dir string) { // metadata only: no new generation
				writeAtomic(t, filepath.Join(dir, "a.yaml"),
					strings.Replace(authorizerYAML("a", "http://two"), "  name: a\n", "  name: a\n  labels: {tier: gold}\n", 1))
			},
			want:  []string{"CustomAuthorizer default/a"},
			check: wantGeneration(2),
		}, {
			do: func(t *testing.T, dir string) {
				writeAtomic(t, filepath.Join(dir, "a.yaml"), authorizerYAML("b", "http://one"))
			},
			want: []string{"CustomAuthorizer default/b"},
		}, {
			do: func(t *testing.T, dir string) { // back, with its first spec: a generation not seen before
				writeAtomic(t, filepath.Join(dir, "a.yaml"), authorizerYAML("a", "http://one"))
			},
			want:  []string{"CustomAuthorizer default/a"},
			check: wantGeneration(3),
		}},
	}, func() (tc watchCase) {
		// A Credential's or a Secret's generation stays 1 (the file source keeps no record
		// of them: nothing reads it without a cluster), while its resourceVersion follows
		// its content.
		rvs := map[string]string{}
		check := func(t *testing.T, objs []client.Object) {
			for _, o := range objs {
				kind := fmt.Sprintf("%T", o)
				if got := o.GetGeneration(); got != 1 {
					t.Errorf("%s generation = %d, want 1", kind, got)
				}
				if got := o.GetResourceVersion(); got == rvs[kind] {
					t.Errorf("%s resourceVersion = %q, as before its content changed", kind, got)
				} else {
					rvs[kind] = got
				}
			}
		}
		write := func(secret, appKey string) func(t *testing.T, dir string) {
			return func(t *testing.T, dir string) {
				writeAtomic(t, filepath.Join(dir, "a.yaml"), credentialYAML("a", secret))
				writeAtomic(t, filepath.Join(dir, "b.yaml"), secretYAML("keys", appKey))
			}
		}
		tc.name = "a Credential's spec and a Secret's data change"
		tc.files = map[string]string{"a.yaml": credentialYAML("a", "keys"), "b.yaml": secretYAML("keys", "one")}
		both := []string{"Credential default/a", "Secret default/keys"}
		tc.initial = both
		tc.steps = []step{{do: write("other-keys", "two"), want: both, check: check}, {do: write("keys", "three"), want: both, check: check}}
		return tc
	}(), {
		name: "a ConfigMap volume is updated",
		steps: []step{{
			do: func(t *testing.T, dir string) {
				// Kubelet's atomic writer: a new timestamped directory, a "..data" symlink
				// renamed over the old one, the old directory removed; the visible files
				// are symlinks through ..data and never change themselves.
				if err := os.Mkdir(filepath.Join(dir, "..v2"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "..v2", "policy.yaml"), credentialYAML("a", "keys")+"---\n"+credentialYAML("v2", "keys"))
				if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"Credential default/a", "Credential default/v2"},
		}},
	}, {
		name:  "the directory is moved away and back",
		files: map[string]string{"a.yaml": credentialYAML("a", "keys")},
		steps: []step{{
			do: func(t *testing.T, dir string) {
				if err := os.Rename(dir, dir+".away"); err != nil {
					t.Fatal(err)
				}
			},
			kept: "no such file or directory",
		}, {
			do: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir+".away", "b.yaml"), credentialYAML("b", "keys"))
				if err := os.Rename(dir+".away", dir); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"Credential default/a", "Credential default/b"},
		}, {
			do: func(t *testing.T, dir string) { // and it is watched again
				writeFile(t, filepath.Join(dir, "c.yaml"), credentialYAML("c", "keys"))
			},
			want: []string{"Credential default/a", "Credential default/b", "Credential default/c"},
		}},
	}, {
		name:  "the directory is removed and recreated",
		files: map[string]string{"a.yaml": credentialYAML("a", "keys")},
		steps: []step{{
			do: func(t *testing.T, dir string) {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "b.yaml"), credentialYAML("b", "keys"))
			},
			want: []string{"Credential default/b"},
		}, {
			do: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "c.yaml"), credentialYAML("c", "keys"))
			},
			want: []string{"Credential default/b", "Credential default/c"},
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "policy")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			initial := []string{"Credential default/a"}
			if tt.initial != nil {
				initial = tt.initial
			}
			if tt.files == nil { // a ConfigMap volume at its first version
				if err := os.Mkdir(filepath.Join(dir, "..v1"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "..v1", "policy.yaml"), credentialYAML("a", "keys"))
				if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join("..data", "policy.yaml"), filepath.Join(dir, "policy.yaml")); err != nil {
					t.Fatal(err)
				}
			}

			src := startSource(t, dir)
			src.waitApplied(t, initial)
			for _, s := range tt.steps {
				s.do(t, dir)
				if s.kept != "" {
					src.waitKept(t, s.kept)
					continue
				}
				src.waitApplied(t, s.want)
				if s.check != nil {
					s.check(t, src.last)
				}
			}
		})
	}
}

func wantGeneration(gen int64) func(t *testing.T, objs []client.Object) {
	return func(t *testing.T, objs []client.Object) {
		t.Helper()
		if got := objs[0].GetGeneration(); got != gen {
			t.Errorf("generation = %d, want %d", got, gen)
		}
	}
}

func TestFileSourceFirstLoad(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		noDir    bool
		wantErr  string
		rejected int // calls of Rejected
	}{
		{name: "broken file", files: map[string]string{"a.yaml": brokenCredentialYAML}, wantErr: `a.yaml:6: Credential "a": unknown field "spec.secretReff"`, rejected: 1},
		{name: "missing directory", noDir: true, wantErr: "no such file or directory"}, // nothing to load: not a rejected load
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.noDir {
				dir = filepath.Join(dir, "nope")
			}
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			applied, rejected := false, 0
			src := &FileSource[client.Object]{Dir: dir, Convert: keepObject, Apply: func([]client.Object) { applied = true }, Rejected: func(error) { rejected++ }}
			err := src.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start = %v, want an error containing %q", err, tt.wantErr)
			}
			if applied {
				t.Error("Apply was called although the first load failed")
			}
			if rejected != tt.rejected {
				t.Errorf("Rejected called %d times, want %d", rejected, tt.rejected)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	tests := []struct {
		json string
		want []string
	}{
		{`{}`, nil},
		{`{"a":1}`, []string{`"a"`, `"a":1`}},
		{`{"a":"x,}]","b":{"c":[1,{"d":"\"}"}]},"e":null}`,
			[]string{`"a"`, `"a":"x,}]"`, `"b"`, `"b":{"c":[1,{"d":"\"}"}]}`, `"e"`, `"e":null`}},
		{` { "k\"ey" : [ ] , "z" : true } `, []string{`"k\"ey"`, `"k\"ey" : [ ]`, `"z"`, `"z" : true`}},
		{`{"s":"\\","t":"\\\""}`, []string{`"s"`, `"s":"\\"`, `"t"`, `"t":"\\\""`}},
	}
	for _, tt := range tests {
		var got []string
		j := bytes.TrimSpace([]byte(tt.json))
		members(j, func(key, member []byte) { got = append(got, string(key), string(member)) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("members(%s) = %q, want %q", tt.json, got, tt.want)
		}
	}
}

func TestContentHashes(t *testing.T) {
	base := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"k":"v"}}`
	content, spec := contentHashes([]byte(base))
	tests := []struct {
		name                  string
		json                  string
		sameContent, sameSpec bool
	}{
		{"identical", base, true, true},
		{"metadata only", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a","labels":{"x":"y"}},"stringData":{"k":"v"}}`, false, true},
		{"status only", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"status":{"x":1},"stringData":{"k":"v"}}`, false, true},
		{"data", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"k":"w"}}`, false, false},
		{"a member moved across the boundary", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"k":"v","kind":"Secret"}}`, false, false},
	}
	for _, tt := range tests {
		c, s := contentHashes([]byte(tt.json))
		if (c == content) != tt.sameContent || (s == spec) != tt.sameSpec {
			t.Errorf("%s: same content %v, same spec %v; want %v, %v", tt.name, c == content, s == spec, tt.sameContent, tt.sameSpec)
		}
	}
}

func TestLoadDirSharesMaps(t *testing.T) {
	dir := t.TempDir()
	cred := func(name, labels, metadata string) string {
		return fmt.Sprintf("apiVersion: auth.portcullis.dev/v1alpha1\nkind: Credential\nmetadata: {name: %s, labels: %s}\nspec: {secretRef: {name: k}, metadata: %s}\n", name, labels, metadata)
	}
	writeFile(t, filepath.Join(dir, "c.yaml"), strings.Join([]string{
		cred("a", "{tier: gold, team: x}", "{plan: p1}"),
		cred("b", "{team: x, tier: gold}", "{plan: p1}"),
		cred("c", "{tier: silver, team: x}", "{plan: p2}"),
		cred("d", "{tier: gold, team: x}", "{tier: gold, team: x}"),
	}, "---\n"))
	objs := byName(t, mustLoad(t, dir))
	get := func(name string) *authv1alpha1.Credential {
		return objs["Credential default/"+name].(*authv1alpha1.Credential)
	}
	same := func(x, y map[string]string) bool {
		return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	}
	a, b, c, d := get("a"), get("b"), get("c"), get("d")
	if !same(a.Labels, b.Labels) || !same(a.Spec.Metadata, b.Spec.Metadata) || !same(a.Labels, d.Spec.Metadata) {
		t.Error("equal maps are not shared")
	}
	if same(a.Labels, c.Labels) || same(a.Spec.Metadata, c.Spec.Metadata) {
		t.Error("different maps are shared")
	}
	if !reflect.DeepEqual(c.Labels, map[string]string{"tier": "silver", "team": "x"}) || !reflect.DeepEqual(b.Spec.Metadata, map[string]string{"plan": "p1"}) {
		t.Errorf("maps changed: %v %v", c.Labels, b.Spec.Metadata)
	}
}

// TestLoadDirClipsCredentialLists: a binding keeps its list of credentials for as long as it
// lives; a decoded list may have room for twice its items.
func TestLoadDirClipsCredentialLists(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{1, 3, 10, 17} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("c-%d", i)
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("b%d.yaml", n)), fmt.Sprintf(`apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: b%d}
spec:
  hosts: [b%d.example.com]
  routes: [{path: /}]
  app: {credentials: [%s]}
`, n, n, strings.Join(names, ", ")))
	}
	for name, o := range byName(t, mustLoad(t, dir)) {
		got := o.(*authv1alpha1.APIBinding).Spec.App.Credentials
		if len(got) == 0 || got[len(got)-1] != fmt.Sprintf("c-%d", len(got)-1) {
			t.Errorf("%s: credentials %q", name, got)
		}
		// An allocation of len strings, rounded up to its size class (17 strings take 288
		// bytes: room for 18); decoded, 10 have room for 16 and 17 for 32.
		if cap(got) > len(got)+1 {
			t.Errorf("%s: %d credentials in a list of capacity %d", name, len(got), cap(got))
		}
	}
}

func TestReadHead(t *testing.T) {
	tests := []struct {
		json                       string
		apiVersion, kind, ns, name string
	}{
		{`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a","namespace":"b"}}`, "v1", "Secret", "b", "a"},
		{`{"kind":"Secret","metadata":{"labels":{"name":"x"},"name":"a"},"spec":{"apiVersion":"x"}}`, "", "Secret", "", "a"},
		{`{"apiVersion":1,"kind":["Secret"],"metadata":"a"}`, "", "", "", ""},
		{`{"apiVersion":"v\u0031","kind":"Se\"cret","metadata":{"name":null}}`, "v1", `Se"cret`, "", ""},
		{`{"ApiVersion":"v1","metadata":{"Name":"a"}}`, "", "", "", ""},
	}
	for _, tt := range tests {
		h := readHead([]byte(tt.json))
		if h.APIVersion != tt.apiVersion || h.Kind != tt.kind || h.Metadata.Namespace != tt.ns || h.Metadata.Name != tt.name {
			t.Errorf("readHead(%s) = %+v", tt.json, h)
		}
	}
}

// TestStableUIDGolden pins the UIDs of two objects: a UID derived from a file must stay
// the same across releases, or every object would look deleted and recreated after an
// upgrade.
func TestStableUIDGolden(t *testing.T) {
	for _, tc := range []struct {
		obj  client.Object
		want string
	}{
		{&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "keys"}}, "e8a296bf-279a-80d5-8fa3-43f9f15a7fec"},
		{&authv1alpha1.Credential{TypeMeta: metav1.TypeMeta{APIVersion: "auth.portcullis.dev/v1alpha1", Kind: "Credential"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c-1"}}, "b183e4e0-9f38-8ba4-9a38-d8dabcf73ff0"},
	} {
		if got := formatUUID(stableUID(tc.obj)); got != tc.want {
			t.Errorf("UID of %s %s/%s = %s, want %s", tc.obj.GetObjectKind().GroupVersionKind().Kind, tc.obj.GetNamespace(), tc.obj.GetName(), got, tc.want)
		}
	}
}
