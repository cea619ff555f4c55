package compile_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output")

// epoch is the Now of every golden build; objects are created one second apart in file order.
var epoch = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// decode reads a multi-document YAML fixture. Objects get what the API server would give
// them: a namespace, a UID, generation 1 and creation times in document order (so earlier
// documents are older).
func decode(t testing.TB, data []byte) []client.Object {
	t.Helper()
	var out []client.Object
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj client.Object
		switch tm.Kind {
		case "Credential":
			obj = &authv1alpha1.Credential{}
		case "CustomAuthorizer":
			obj = &authv1alpha1.CustomAuthorizer{}
		case "APIBinding":
			obj = &authv1alpha1.APIBinding{}
		case "Secret":
			obj = &corev1.Secret{}
		default:
			t.Fatalf("document %d: unknown kind %q", i, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
		if s, ok := obj.(*corev1.Secret); ok {
			for k, v := range s.StringData {
				if s.Data == nil {
					s.Data = map[string][]byte{}
				}
				s.Data[k] = []byte(v)
			}
		}
		if obj.GetNamespace() == "" {
			obj.SetNamespace("default")
		}
		obj.SetUID(types.UID(fmt.Sprintf("uid-%s-%s-%s", tm.Kind, obj.GetNamespace(), obj.GetName())))
		if obj.GetGeneration() == 0 {
			obj.SetGeneration(1)
		}
		obj.SetResourceVersion("1")
		if ts := obj.GetCreationTimestamp(); ts.IsZero() {
			obj.SetCreationTimestamp(metav1.NewTime(epoch.Add(-time.Hour).Add(time.Duration(i) * time.Second)))
		}
		out = append(out, obj)
	}
	return out
}

func inputsFrom(objs []client.Object) *compile.Inputs {
	in := compile.NewInputs()
	in.Now = epoch
	for _, o := range objs {
		in.Set(o)
	}
	return in
}

// TestGolden builds every testdata/*.in.yaml and compares the described snapshot with
// *.out.yaml. Run with -update to rewrite the expectations after reviewing the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			snap, statuses := compile.Build(inputsFrom(decode(t, data)), nil)
			got := snap.Describe()
			// A full build reports every status of its snapshot, each once.
			reported := map[compile.ObjectKey]compile.ObjectStatus{}
			for st := range statuses.All() {
				if _, twice := reported[st.Key]; twice {
					t.Errorf("a full build reported %s twice", st.Key)
				}
				reported[st.Key] = st
			}
			all := snap.Statuses()
			if len(reported) != len(all) || statuses.Len() != len(all) {
				t.Errorf("a full build reported %d statuses (Len %d), the snapshot holds %d", len(reported), statuses.Len(), len(all))
			}
			for i := range all {
				if r, ok := reported[all[i].Key]; !ok || !r.Equal(&all[i]) {
					t.Errorf("status of %s: reported %+v, the snapshot says %+v", all[i].Key, r, all[i])
				}
			}
			// A reader may stop at any status (the iterator panics if it goes on).
			for stop := 1; stop <= len(all); stop++ {
				n := 0
				for range statuses.All() {
					if n++; n == stop {
						break
					}
				}
			}
			want := strings.TrimSuffix(f, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test ./authz/compile -run TestGolden -update)", err)
			}
			if got != string(exp) {
				t.Errorf("snapshot of %s differs from %s (rerun with -update after review):\n%s", f, want, lineDiff(string(exp), got))
			}
		})
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var lw, lg string
		if i < len(w) {
			lw = w[i]
		}
		if i < len(g) {
			lg = g[i]
		}
		if lw != lg {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, lw, lg)
		}
	}
	return b.String()
}
