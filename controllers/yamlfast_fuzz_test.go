package controllers

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzFastYAML checks the fast path's contract on arbitrary documents: whenever
// fastYAMLToJSON converts a document, sigsyaml.YAMLToJSONStrict converts it too, to the same
// bytes. Seeds: the table of TestFastYAMLToJSON, the sample policies and the engine's test
// world (one document at a time), and testdata/fuzz/FuzzFastYAML.
func FuzzFastYAML(f *testing.F) {
	for _, tc := range fastYAMLCases {
		f.Add([]byte(tc.doc))
	}
	for _, pattern := range []string{"../config/samples/*.yaml", "../authz/engine/enginetest/world/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			for _, doc := range splitYAMLDocs(data) {
				f.Add(doc)
			}
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkFastYAML(t, doc)
	})
}
