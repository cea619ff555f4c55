package controllers

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// maxFuzzManifest bounds one fuzzed file: policy files are small, and the YAML parser's cost
// on a megabyte of nesting says nothing about Portcullis.
const maxFuzzManifest = 64 << 10

var placedRE = regexp.MustCompile(`^(.+?):(\d+): `)

// FuzzLoadDir feeds one file to the file source's reader (LoadDir over a directory holding
// it). It never panics; every problem is a *LoadError naming the file and a line inside it
// (and its message starts with "file:line: "); on a problem no object comes back; and
// whatever is accepted re-validates: written back as YAML and loaded again it gives the same
// objects (all but the resourceVersion, which hashes the text as written), and the compiler
// builds a snapshot from it.
func FuzzLoadDir(f *testing.F) {
	dir, err := os.MkdirTemp("", "portcullis-fuzz-load-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, sample := range []string{"../config/samples", "../authz/engine/enginetest/world"} {
		files, _ := filepath.Glob(filepath.Join(sample, "*.yaml"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil && len(b) <= maxFuzzManifest {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzManifest {
			return
		}
		in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
		for _, d := range []string{in, out} {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		file := filepath.Join(in, "policy.yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1

		objs, err := LoadDir(in)
		if err != nil {
			if objs != nil {
				t.Fatalf("LoadDir returned %d objects with an error", len(objs))
			}
			var problems []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				problems = j.Unwrap()
			} else {
				problems = []error{err}
			}
			for _, p := range problems {
				var le *LoadError
				if !errors.As(p, &le) {
					t.Fatalf("problem %q is not a *LoadError", p)
				}
				if le.File != file || le.Line < 1 || le.Line > lines {
					t.Fatalf("problem %q placed at %s:%d; want %s:1..%d", p, le.File, le.Line, file, lines)
				}
				m := placedRE.FindStringSubmatch(p.Error())
				if m == nil || m[1] != file || m[2] != strconv.Itoa(le.Line) {
					t.Fatalf("problem %q does not start with %s:%d: ", p, file, le.Line)
				}
			}
			return
		}

		// Accepted: write the objects back and load them again.
		var buf bytes.Buffer
		for _, o := range objs {
			y, err := sigsyaml.Marshal(o)
			if err != nil {
				t.Fatalf("marshal %s/%s: %v", o.GetNamespace(), o.GetName(), err)
			}
			buf.WriteString("---\n")
			buf.Write(y)
		}
		if err := os.WriteFile(filepath.Join(out, "policy.yaml"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := LoadDir(out)
		if err != nil {
			t.Fatalf("accepted objects do not load again: %v\n%s", err, buf.Bytes())
		}
		if len(again) != len(objs) {
			t.Fatalf("%d objects loaded again as %d", len(objs), len(again))
		}
		for i := range objs {
			// The resourceVersion hashes the text as written, which the round trip
			// changes (it adds uid and creationTimestamp, and turns stringData into data).
			again[i].SetResourceVersion(objs[i].GetResourceVersion())
			if !equality.Semantic.DeepEqual(objs[i], again[i]) {
				t.Fatalf("object %d changed on a round trip:\n%#v\n%#v", i, objs[i], again[i])
			}
		}
		in2 := compile.NewInputs()
		in2.Now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, o := range objs {
			in2.Set(o)
		}
		if snap, _ := compile.Build(in2, nil); snap == nil {
			t.Fatal("Build returned no snapshot")
		}
	})
}
