// Package charttest tests the Helm chart in charts/portcullis: lint, golden renders, the values
// schema, the RBAC against the controllers' markers, the CRDs against config/crd/bases, and a
// server-side dry-run apply of every rendered object against a real kube-apiserver.
package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the chart")

const (
	chartDir     = "../portcullis"
	releaseName  = "portcullis"
	releaseNS    = "portcullis-system"
	customValues = "testdata/custom.values.yaml"
	keepPolicy   = "helm.sh/resource-policy"
)

// helmBin is the helm binary: $HELM, else bin/helm of the repository (installed by `make helm`).
func helmBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "helm")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("helm not found at %s: run `make helm` (installs helm.sh/helm/v3 into bin/) or set HELM to a helm v3 binary", abs)
	}
	return abs
}

// helm runs helm with args in a throwaway HOME and returns stdout; err carries stderr.
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// render is `helm template` of the chart in releaseNS with the given extra arguments.
func render(t testing.TB, args ...string) string {
	t.Helper()
	out, err := helm(t, append([]string{"template", releaseName, chartDir, "--namespace", releaseNS}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects splits a rendered manifest stream into objects, skipping empty documents.
func objects(t testing.TB, manifest string) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("split rendered manifest: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("parse rendered document: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

func describe(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), ns, o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}

// The chart passes `helm lint --strict` (warnings are errors) with default and custom values.
func TestLint(t *testing.T) {
	for name, args := range map[string][]string{
		"default": nil,
		"custom":  {"--values", customValues},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", "--namespace", releaseNS, chartDir}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// `helm template` output is pinned by testdata/*.golden.yaml; `go test ./charts/... -update`
// rewrites them after an intended change (review the diff).
func TestGolden(t *testing.T) {
	for name, args := range map[string][]string{
		"default": nil,
		"custom":  {"--values", customValues},
	} {
		t.Run(name, func(t *testing.T) {
			got := render(t, args...)
			golden := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `go test ./charts/... -update` to create it)", err)
			}
			if d := firstDiff(string(want), got); d != "" {
				t.Fatalf("helm template differs from %s (run `go test ./charts/... -update` and review the diff):\n%s", golden, d)
			}
		})
	}
}

// firstDiff describes the first line where want and got differ, or returns "".
func firstDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return fmt.Sprintf("line %d:\n  want: %q\n  got:  %q", i+1, wl, gl)
		}
	}
	return "they differ"
}

// values.schema.json is enforced: bad values fail the render with the schema's message.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, values, want string
	}{
		{"negative replicaCount", "replicaCount: -1\n", "at '/replicaCount': minimum"},
		{"grpc port 0", "ports:\n  grpc: 0\n", "at '/ports/grpc': minimum"},
		{"unknown top-level key", "replicas: 3\n", "additional properties 'replicas' not allowed"},
		{"numeric image tag", "image:\n  tag: 5\n", "at '/image/tag': got number, want string"},
		{"unknown nested key", "crds:\n  install: true\n", "additional properties 'install' not allowed"},
		{"both PDB bounds", "podDisruptionBudget:\n  minAvailable: 1\n", "at '/podDisruptionBudget': 'oneOf' failed"},
		{"bad anti-affinity mode", "podAntiAffinity:\n  mode: always\n", "at '/podAntiAffinity/mode'"},
		{"bad duration", "maxClockSkew: 15 minutes\n", "at '/maxClockSkew'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(file, []byte(tc.values), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := helm(t, "template", releaseName, chartDir, "--namespace", releaseNS, "--values", file)
			if err == nil {
				t.Fatalf("helm template accepted %q", tc.values)
			}
			for _, want := range []string{"values don't meet the specifications of the schema", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// The chart's CRDs are config/crd/bases plus labels and, with crds.keep, the keep policy; and
// crds.enabled=false leaves them out.
func TestCRDs(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join("..", "..", "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	want := map[string]map[string]any{}
	for _, f := range bases {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objects(t, string(data)) {
			want[o.GetName()] = o.Object
		}
	}

	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			got := map[string]bool{}
			for _, o := range objects(t, render(t, "--set", fmt.Sprintf("crds.keep=%v", keep))) {
				if o.GetKind() != "CustomResourceDefinition" {
					continue
				}
				got[o.GetName()] = true
				ann := o.GetAnnotations()
				if keep != (ann[keepPolicy] == "keep") {
					t.Errorf("%s: crds.keep=%v but annotations are %v", o.GetName(), keep, ann)
				}
				if o.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
					t.Errorf("%s: no chart labels: %v", o.GetName(), o.GetLabels())
				}
				delete(ann, keepPolicy)
				o.SetAnnotations(ann)
				o.SetLabels(nil)
				if w, ok := want[o.GetName()]; !ok {
					t.Errorf("chart renders CRD %s that config/crd/bases does not have", o.GetName())
				} else if !reflect.DeepEqual(o.Object, w) {
					t.Errorf("chart CRD %s differs from config/crd/bases: run `make manifests`", o.GetName())
				}
			}
			for name := range want {
				if !got[name] {
					t.Errorf("chart does not render CRD %s: run `make manifests`", name)
				}
			}
		})
	}

	t.Run("disabled", func(t *testing.T) {
		for _, o := range objects(t, render(t, "--set", "crds.enabled=false")) {
			if o.GetKind() == "CustomResourceDefinition" {
				t.Errorf("crds.enabled=false renders %s", describe(o))
			}
		}
	})
}

// The chart grants what the +kubebuilder:rbac markers in controllers/ ask for
// (config/rbac/role.yaml) and nothing else, except the narrowing below; with watchNamespace
// nothing is cluster-wide.
func TestRBACFollowsMarkers(t *testing.T) {
	// client-go's LeaseLock only gets, creates and updates its Lease.
	narrowed := map[string]bool{
		"coordination.k8s.io/leases/list":   true,
		"coordination.k8s.io/leases/watch":  true,
		"coordination.k8s.io/leases/patch":  true,
		"coordination.k8s.io/leases/delete": true,
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range objects(t, string(data)) {
		for _, p := range permissions(t, o) {
			if !narrowed[p] {
				want = append(want, p)
			}
		}
	}
	want = sortedSet(want)

	for name, args := range map[string][]string{
		"cluster-wide": nil,
		"namespaced":   {"--values", customValues},
	} {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, o := range objects(t, render(t, args...)) {
				switch o.GetKind() {
				case "ClusterRole", "ClusterRoleBinding":
					if name == "namespaced" {
						t.Errorf("watchNamespace is set but the chart renders %s", describe(o))
					}
					fallthrough
				case "Role":
					got = append(got, permissions(t, o)...)
				}
			}
			got = sortedSet(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("chart RBAC differs from config/rbac/role.yaml (minus the leases it never uses):\n  chart:   %v\n  markers: %v", got, want)
			}
		})
	}
}

// permissions flattens the rules of a Role or ClusterRole into group/resource/verb strings.
func permissions(t testing.TB, o *unstructured.Unstructured) []string {
	t.Helper()
	rules, _, err := unstructured.NestedSlice(o.Object, "rules")
	if err != nil {
		t.Fatalf("%s: %v", describe(o), err)
	}
	var out []string
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		strs := func(k string) []string {
			s, _, err := unstructured.NestedStringSlice(rule, k)
			if err != nil {
				t.Fatalf("%s: rules[].%s: %v", describe(o), k, err)
			}
			return s
		}
		for _, g := range strs("apiGroups") {
			for _, res := range strs("resources") {
				for _, v := range strs("verbs") {
					out = append(out, g+"/"+res+"/"+v)
				}
			}
		}
	}
	return out
}

func sortedSet(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
