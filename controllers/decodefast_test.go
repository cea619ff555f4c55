package controllers

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

func newSecret() client.Object     { return &corev1.Secret{} }
func newCredential() client.Object { return &authv1alpha1.Credential{} }

// worldLargeSecret and worldLargeCredential are documents as hack/loadtest/world.go writes
// them for credential c.
func worldLargeSecret(c int) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: k-%06d, namespace: load, labels: {auth.portcullis.dev/credential: \"true\"}}\n"+
		"stringData: {appKey: lk-%06d, appSecret: secret-%06d-0123456789abcdef, appCodes: LOADCODE-%06d-QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ}\n", c, c, c, c)
}

func worldLargeCredential(c int) string {
	return fmt.Sprintf("apiVersion: auth.portcullis.dev/v1alpha1\nkind: Credential\nmetadata: {name: c-%06d, namespace: load, labels: {tier: t%d}}\n"+
		"spec: {secretRef: {name: k-%06d}, metadata: {tier: t%d}}\n", c, c%3, c, c%3)
}

// docJSON converts a YAML document to JSON as loadDocument does.
func docJSON(tb testing.TB, doc []byte) []byte {
	tb.Helper()
	j, ok := fastYAMLToJSON(nil, doc)
	if !ok {
		var err error
		if j, err = sigsyaml.YAMLToJSONStrict(doc); err != nil {
			tb.Fatalf("YAML to JSON: %v\n%s", err, doc)
		}
	}
	return bytes.TrimSpace(j)
}

// strictDecode decodes j as loadObject's strict path does; ok is false on an error or any
// strict error.
func strictDecode(j []byte, construct func() client.Object) (client.Object, bool) {
	obj := construct()
	strictErrs, err := kjson.UnmarshalStrict(j, obj)
	return obj, err == nil && len(strictErrs) == 0
}

// checkFastDecode checks fastDecode's contract on j for both kinds it handles: whenever it
// accepts, the strict decoder accepts too and decodes the same object. It reports which
// kinds were accepted.
func checkFastDecode(t *testing.T, j []byte) (secret, credential bool) {
	t.Helper()
	accepted := map[string]bool{}
	var names nameArena // the second passes make their names in it, as a load does
	for name, construct := range map[string]func() client.Object{"Secret": newSecret, "Credential": newCredential} {
		// The first pass fills the shared maps, the second takes its maps from them.
		maps := sharedMaps{}
		obj := construct()
		if !fastDecode(j, obj, maps, nil) {
			continue
		}
		accepted[name] = true
		want, ok := strictDecode(j, construct)
		if !ok {
			strictErrs, err := kjson.UnmarshalStrict(j, construct())
			t.Fatalf("fastDecode accepted as %s what UnmarshalStrict rejects (err %v, strict %v):\n%s", name, err, strictErrs, j)
		}
		again := construct()
		if !fastDecode(j, again, maps, &names) {
			t.Fatalf("fastDecode gave up as %s the second time, with the maps of the first and a name arena:\n%s", name, j)
		}
		for pass, got := range []client.Object{obj, again} {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fastDecode (pass %d) decoded as %s\n%#v\nUnmarshalStrict\n%#v\nfrom:\n%s", pass+1, name, got, want, j)
			}
		}
	}
	for _, obj := range []client.Object{&authv1alpha1.APIBinding{}, &authv1alpha1.CustomAuthorizer{}} {
		if fastDecode(j, obj, sharedMaps{}, nil) {
			t.Fatalf("fastDecode accepted a %T", obj)
		}
	}
	return accepted["Secret"], accepted["Credential"]
}

type fastDecodeCase struct {
	name string
	kind string // "Secret" or "Credential"
	json string
	// For a case fastDecode gives up on: whether the strict decoder rejects it too (an
	// error or a strict error), or gives up only because fastDecode does not handle it.
	strictRejects bool
}

var fastDecodeAccepted = []fastDecodeCase{
	{name: "world-large secret", kind: "Secret", json: `{"apiVersion":"v1","kind":"Secret","metadata":{"labels":{"auth.portcullis.dev/credential":"true"},"name":"k-000042","namespace":"load"},"stringData":{"appCodes":"LOADCODE-000042-QQQQ","appKey":"lk-000042","appSecret":"secret-000042-0123456789abcdef"}}`},
	{name: "world-large credential", kind: "Credential", json: `{"apiVersion":"auth.portcullis.dev/v1alpha1","kind":"Credential","metadata":{"labels":{"tier":"t0"},"name":"c-000042","namespace":"load"},"spec":{"metadata":{"tier":"t0"},"secretRef":{"name":"k-000042"}}}`},
	{name: "empty secret", kind: "Secret", json: `{}`},
	{name: "empty credential", kind: "Credential", json: `{}`},
	{name: "every secret field", kind: "Secret", json: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"ns","labels":{"a":"1","b":""},"annotations":{"note":"x y"}},"type":"kubernetes.io/basic-auth","data":{"username":"YWRtaW4=","password":"cGFzcw==","empty":""},"stringData":{"k":"v"},"immutable":true}`},
	{name: "immutable false", kind: "Secret", json: `{"immutable":false}`},
	{name: "empty maps are not nil", kind: "Secret", json: `{"metadata":{"labels":{},"annotations":{}},"data":{},"stringData":{}}`},
	{name: "base64 with non-zero padding bits", kind: "Secret", json: `{"data":{"a":"QR==","b":"QUI=","c":"QUJD"}}`},
	{name: "base64 with escapes", kind: "Secret", json: `{"data":{"a":"YQ\u003d\u003d","b":"a\/8="}}`},
	{name: "large map", kind: "Secret", json: `{"stringData":{"k01":"1","k02":"2","k03":"3","k04":"4","k05":"5","k06":"6","k07":"7","k08":"8","k09":"9","k10":"10","k11":"11","k12":"12"}}`},
	{name: "every credential field", kind: "Credential", json: `{"apiVersion":"auth.portcullis.dev/v1alpha1","kind":"Credential","metadata":{"name":"c","namespace":"ns","labels":{"tier":"gold"},"annotations":{"a":"b"}},"spec":{"secretRef":{"name":"keys"},"disabled":true,"allowedCIDRs":["10.0.0.0/8","192.168.0.0/16"],"metadata":{"tier":"gold","team":"x"}}}`},
	{name: "disabled false", kind: "Credential", json: `{"spec":{"disabled":false}}`},
	{name: "empty list is not nil", kind: "Credential", json: `{"spec":{"allowedCIDRs":[],"metadata":{}}}`},
	{name: "empty secretRef and spec", kind: "Credential", json: `{"spec":{"secretRef":{}}}`},
	{name: "whitespace", kind: "Credential", json: " \n{ \"kind\" : \"Credential\" ,\r\n\t\"spec\":{ \"allowedCIDRs\" : [ \"10.0.0.0/8\" , \"::1/128\" ] , \"disabled\" : true , \"secretRef\" : { \"name\" : \"k\" } } , \"metadata\" : { \"labels\" : { \"a\" : \"b\" } } } \n"},
	{name: "string escapes", kind: "Secret", json: `{"stringData":{"appCodes":"A\nB\n","q":"\"quoted\" back\\slash \/ \b\f\r\t","html":"\u003cb\u003e \u0026 \u2028 \u00e9 \u0000"}}`},
	{name: "non-ASCII", kind: "Secret", json: `{"metadata":{"annotations":{"desc":"café ☕ 日本"}}}`},
	{name: "escaped keys match after unescaping", kind: "Secret", json: `{"k\u0069nd":"Secret","metadata":{"n\u0061me":"s"},"stringData":{"a\nb":"c"}}`},
	{name: "other apiVersion and kind are kept", kind: "Secret", json: `{"apiVersion":"v2","kind":"Foo"}`},
}

var fastDecodeGiveUps = []fastDecodeCase{
	// Rejected by the strict decoder too.
	{name: "duplicate top-level key", kind: "Secret", json: `{"kind":"Secret","kind":"Secret"}`, strictRejects: true},
	{name: "duplicate metadata", kind: "Credential", json: `{"metadata":{},"metadata":{}}`, strictRejects: true},
	{name: "duplicate metadata key", kind: "Secret", json: `{"metadata":{"name":"a","name":"a"}}`, strictRejects: true},
	{name: "duplicate label", kind: "Secret", json: `{"metadata":{"labels":{"a":"1","a":"2"}}}`, strictRejects: true},
	{name: "duplicate annotation", kind: "Credential", json: `{"metadata":{"annotations":{"a":"1","b":"1","a":"1"}}}`, strictRejects: true},
	{name: "duplicate stringData key", kind: "Secret", json: `{"stringData":{"k":"v","k":"v"}}`, strictRejects: true},
	{name: "duplicate data key", kind: "Secret", json: `{"data":{"k":"","k":""}}`, strictRejects: true},
	{name: "duplicate key through an escape", kind: "Secret", json: `{"stringData":{"a":"1","\u0061":"2"}}`, strictRejects: true},
	{name: "duplicate spec field", kind: "Credential", json: `{"spec":{"disabled":true,"disabled":true}}`, strictRejects: true},
	{name: "duplicate secretRef name", kind: "Credential", json: `{"spec":{"secretRef":{"name":"a","name":"b"}}}`, strictRejects: true},
	{name: "duplicate spec metadata key", kind: "Credential", json: `{"spec":{"metadata":{"x":"1","x":"1"}}}`, strictRejects: true},
	{name: "case-mismatched key", kind: "Secret", json: `{"metadata":{"Name":"a"}}`, strictRejects: true},
	{name: "case-mismatched top-level key", kind: "Credential", json: `{"Kind":"Credential"}`, strictRejects: true},
	{name: "case-mismatched spec key", kind: "Credential", json: `{"spec":{"secretref":{"name":"a"}}}`, strictRejects: true},
	{name: "unknown top-level field", kind: "Secret", json: `{"spec":{}}`, strictRejects: true},
	{name: "secret field in a credential", kind: "Credential", json: `{"stringData":{}}`, strictRejects: true},
	{name: "unknown metadata field", kind: "Secret", json: `{"metadata":{"nam":"a"}}`, strictRejects: true},
	{name: "unknown secretRef field", kind: "Credential", json: `{"spec":{"secretRef":{"namespace":"x"}}}`, strictRejects: true},
	{name: "number where string", kind: "Secret", json: `{"metadata":{"name":5}}`, strictRejects: true},
	{name: "number label value", kind: "Credential", json: `{"metadata":{"labels":{"a":1}}}`, strictRejects: true},
	{name: "bool where string", kind: "Secret", json: `{"type":true}`, strictRejects: true},
	{name: "string where bool", kind: "Credential", json: `{"spec":{"disabled":"true"}}`, strictRejects: true},
	{name: "number where bool", kind: "Secret", json: `{"immutable":1}`, strictRejects: true},
	{name: "object where list", kind: "Credential", json: `{"spec":{"allowedCIDRs":{}}}`, strictRejects: true},
	{name: "number in list", kind: "Credential", json: `{"spec":{"allowedCIDRs":["a",1]}}`, strictRejects: true},
	{name: "list where map", kind: "Secret", json: `{"stringData":["a"]}`, strictRejects: true},
	{name: "invalid base64", kind: "Secret", json: `{"data":{"k":"not base64!"}}`, strictRejects: true},
	{name: "base64 without padding", kind: "Secret", json: `{"data":{"k":"QQ"}}`, strictRejects: true},
	{name: "trailing garbage", kind: "Secret", json: `{"kind":"Secret"}x`, strictRejects: true},
	{name: "two objects", kind: "Credential", json: `{}{}`, strictRejects: true},
	{name: "trailing comma", kind: "Secret", json: `{"kind":"Secret",}`, strictRejects: true},
	{name: "trailing comma in map", kind: "Secret", json: `{"stringData":{"a":"b",}}`, strictRejects: true},
	{name: "trailing comma in list", kind: "Credential", json: `{"spec":{"allowedCIDRs":["a",]}}`, strictRejects: true},
	{name: "missing colon", kind: "Secret", json: `{"kind" "Secret"}`, strictRejects: true},
	{name: "truncated", kind: "Credential", json: `{"spec":{"secretRef":{"name":"a"}`, strictRejects: true},
	{name: "truncated string", kind: "Secret", json: `{"kind":"Sec`, strictRejects: true},
	{name: "truncated literal", kind: "Secret", json: `{"immutable":tru}`, strictRejects: true},
	{name: "literal run on", kind: "Secret", json: `{"immutable":truex}`, strictRejects: true},
	{name: "unknown escape", kind: "Secret", json: `{"kind":"\x41"}`, strictRejects: true},
	{name: "short unicode escape", kind: "Secret", json: `{"kind":"\u00"}`, strictRejects: true},
	{name: "control character in string", kind: "Secret", json: "{\"kind\":\"a\tb\"}", strictRejects: true},
	{name: "not an object", kind: "Secret", json: `["kind"]`, strictRejects: true},
	{name: "empty input", kind: "Credential", json: ``, strictRejects: true},
	{name: "single quotes", kind: "Secret", json: `{'kind':'Secret'}`, strictRejects: true},
	// Accepted by the strict decoder, but not handled here.
	{name: "null map", kind: "Secret", json: `{"metadata":{"labels":null}}`},
	{name: "null string", kind: "Credential", json: `{"metadata":{"name":null}}`},
	{name: "null pointer", kind: "Secret", json: `{"immutable":null}`},
	{name: "null object", kind: "Credential", json: `{"spec":null}`},
	{name: "null list", kind: "Credential", json: `{"spec":{"allowedCIDRs":null}}`},
	{name: "null in map", kind: "Secret", json: `{"data":{"k":null}}`},
	{name: "credential status", kind: "Credential", json: `{"status":{"appKey":"k"}}`},
	{name: "credential expiresAt", kind: "Credential", json: `{"spec":{"expiresAt":"2030-01-01T00:00:00Z"}}`},
	{name: "other metadata field", kind: "Secret", json: `{"metadata":{"uid":"u"}}`},
	{name: "generateName", kind: "Credential", json: `{"metadata":{"generateName":"c-"}}`},
	{name: "creationTimestamp", kind: "Secret", json: `{"metadata":{"creationTimestamp":null}}`},
	{name: "invalid UTF-8", kind: "Secret", json: "{\"kind\":\"\xff\"}"},
	{name: "invalid UTF-8 with an escape", kind: "Secret", json: "{\"kind\":\"\\n\xc3\"}"},
	{name: "encoded surrogate", kind: "Secret", json: "{\"kind\":\"\xed\xa0\x80\"}"},
	{name: "lone surrogate escape", kind: "Secret", json: `{"kind":"\ud800"}`},
	{name: "surrogate pair escape", kind: "Credential", json: `{"kind":"\ud83d\ude00"}`},
}

// TestFastDecode checks what fastDecode accepts against kjson.UnmarshalStrict, and that it
// gives up on what it must not (or need not) decode.
func TestFastDecode(t *testing.T) {
	constructors := map[string]func() client.Object{"Secret": newSecret, "Credential": newCredential}
	for _, tc := range fastDecodeAccepted {
		t.Run("accept/"+tc.name, func(t *testing.T) {
			construct := constructors[tc.kind]
			obj := construct()
			if !fastDecode([]byte(tc.json), obj, sharedMaps{}, nil) {
				t.Fatalf("fastDecode gave up on %s", tc.json)
			}
			want, ok := strictDecode([]byte(tc.json), construct)
			if !ok {
				t.Fatalf("UnmarshalStrict rejects %s", tc.json)
			}
			if !reflect.DeepEqual(obj, want) {
				t.Errorf("fastDecode\n%#v\nUnmarshalStrict\n%#v", obj, want)
			}
			checkFastDecode(t, []byte(tc.json))
		})
	}
	for _, tc := range fastDecodeGiveUps {
		t.Run("give up/"+tc.name, func(t *testing.T) {
			construct := constructors[tc.kind]
			if fastDecode([]byte(tc.json), construct(), sharedMaps{}, nil) {
				t.Fatalf("fastDecode accepted %s", tc.json)
			}
			if _, ok := strictDecode([]byte(tc.json), construct); ok == tc.strictRejects {
				t.Errorf("UnmarshalStrict accepts: %v, want %v", ok, !tc.strictRejects)
			}
			checkFastDecode(t, []byte(tc.json))
		})
	}
	for _, obj := range []client.Object{&authv1alpha1.APIBinding{}, &authv1alpha1.CustomAuthorizer{}} {
		if fastDecode([]byte(`{}`), obj, sharedMaps{}, nil) {
			t.Errorf("fastDecode accepted a %T", obj)
		}
	}
}

// fastDecodeSampleDocs returns the JSON of every document of the sample policies, the
// engine's test world, the file source's valid test directory and a few world-large
// documents, by source.
func fastDecodeSampleDocs(tb testing.TB) map[string][][]byte {
	tb.Helper()
	out := map[string][][]byte{}
	for _, pattern := range []string{"../config/samples/*.yaml", "../authz/engine/enginetest/world/*.yaml", "testdata/files/valid/*.y*ml"} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			tb.Fatalf("no files for %s: %v", pattern, err)
		}
		for _, file := range files {
			if !isManifestName(filepath.Base(file)) {
				continue
			}
			data, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			for _, doc := range splitDocuments(data) {
				if j := docJSON(tb, doc.text); string(j) != "null" {
					out[filepath.Dir(pattern)] = append(out[filepath.Dir(pattern)], j)
				}
			}
		}
	}
	for _, c := range []int{0, 1, 2, 42, 99999} {
		out["world-large"] = append(out["world-large"], docJSON(tb, []byte(worldLargeSecret(c))), docJSON(tb, []byte(worldLargeCredential(c))))
	}
	return out
}

// TestFastDecodeSamples checks that every Secret and Credential of the sample policies, the
// engine's test world and the loadtest's large world takes the fast path, and decodes as
// the strict decoder does.
func TestFastDecodeSamples(t *testing.T) {
	for source, docs := range fastDecodeSampleDocs(t) {
		var secrets, credentials int
		for _, j := range docs {
			secret, credential := checkFastDecode(t, j)
			switch readHead(j).Kind {
			case "Secret":
				secrets++
				if !secret && source != "testdata/files/valid" {
					t.Errorf("%s: fastDecode gave up on Secret\n%s", source, j)
				}
			case "Credential":
				credentials++
				if !credential && source != "testdata/files/valid" {
					t.Errorf("%s: fastDecode gave up on Credential\n%s", source, j)
				}
			}
		}
		if secrets == 0 || credentials == 0 {
			t.Errorf("%s: %d Secrets and %d Credentials, want some of each", source, secrets, credentials)
		}
	}
}

// TestFastDecodeSharedMaps checks that documents whose labels or spec.metadata are written
// the same share one map, and that any other text gets its own.
func TestFastDecodeSharedMaps(t *testing.T) {
	cred := func(labels, metadata string) string {
		return `{"apiVersion":"auth.portcullis.dev/v1alpha1","kind":"Credential","metadata":{"labels":` + labels +
			`,"name":"c","namespace":"n"},"spec":{"metadata":` + metadata + `,"secretRef":{"name":"k"}}}`
	}
	maps := sharedMaps{}
	decode := func(doc string) *authv1alpha1.Credential {
		t.Helper()
		c := &authv1alpha1.Credential{}
		if !fastDecode([]byte(doc), c, maps, nil) {
			t.Fatalf("fastDecode gave up on %s", doc)
		}
		return c
	}
	same := func(a, b map[string]string) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	a := decode(cred(`{"tier":"t0"}`, `{"team":"a"}`))
	b := decode(cred(`{"tier":"t0"}`, `{"team":"a"}`))
	c := decode(cred(`{"tier":"t1"}`, `{"tier":"t0"}`))           // spec.metadata written as a's labels
	d := decode(cred(`{ "tier": "t0" }`, `{"team":"a","x":"y"}`)) // equal labels, other text
	if !same(a.Labels, b.Labels) || !same(a.Spec.Metadata, b.Spec.Metadata) {
		t.Error("equal text did not share the map")
	}
	if same(a.Labels, c.Labels) || !same(c.Spec.Metadata, a.Labels) {
		t.Error("maps are not shared by their text alone")
	}
	if same(a.Labels, d.Labels) || !reflect.DeepEqual(a.Labels, d.Labels) || same(a.Spec.Metadata, d.Spec.Metadata) {
		t.Errorf("other text: labels %v (shared %v), metadata %v", d.Labels, same(a.Labels, d.Labels), d.Spec.Metadata)
	}
	// A map that fails to decode is not kept.
	if fastDecode([]byte(cred(`{"tier":"t0","tier":"t1"}`, `{}`)), &authv1alpha1.Credential{}, maps, nil) {
		t.Error("a duplicate label key was accepted")
	}
	if _, ok := maps[`{"tier":"t0","tier":"t1"}`]; ok {
		t.Error("a map with a duplicate key was kept")
	}
}

// FuzzFastDecode checks fastDecode's contract on arbitrary JSON: whenever it accepts a
// document as a Secret or a Credential, kjson.UnmarshalStrict accepts it without strict
// errors and decodes the same object. Seeds: the table of TestFastDecode, the sample
// documents and testdata/fuzz/FuzzFastDecode.
func FuzzFastDecode(f *testing.F) {
	for _, tc := range fastDecodeAccepted {
		f.Add([]byte(tc.json))
	}
	for _, tc := range fastDecodeGiveUps {
		f.Add([]byte(tc.json))
	}
	for _, docs := range fastDecodeSampleDocs(f) {
		for _, j := range docs {
			f.Add(j)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastDecode(t, data)
	})
}

// BenchmarkFastDecode compares fastDecode with kjson.UnmarshalStrict on a world-large Secret
// and Credential.
func BenchmarkFastDecode(b *testing.B) {
	for _, kind := range []struct {
		name      string
		doc       string
		construct func() client.Object
	}{
		{"Secret", worldLargeSecret(42), newSecret},
		{"Credential", worldLargeCredential(42), newCredential},
	} {
		j := docJSON(b, []byte(kind.doc))
		b.Run(kind.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(j)))
			maps := sharedMaps{} // one per worker in loadDocuments: after the first, labels repeat
			for b.Loop() {
				if !fastDecode(j, kind.construct(), maps, nil) {
					b.Fatal("gave up")
				}
			}
		})
		b.Run(kind.name+"/strict", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(j)))
			for b.Loop() {
				if _, ok := strictDecode(j, kind.construct); !ok {
					b.Fatal("rejected")
				}
			}
		})
	}
}

// TestNameArena: every name made stays as it was while the arena makes thousands more, a
// repeated namespace is made once, and a long name is allocated on its own.
func TestNameArena(t *testing.T) {
	var a nameArena
	want := make([]string, 0, 5000)
	got := make([]string, 0, 5000)
	for i := range cap(want) {
		w := fmt.Sprintf("c-%06d", i)
		if i%97 == 0 {
			w = strings.Repeat("x", nameBlock/8+1+i%3)
		}
		want = append(want, w)
		got = append(got, a.make([]byte(w)))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("name %d is %q, want %q", i, got[i], want[i])
		}
	}
	if a.make(nil) != "" {
		t.Error("an empty name is not empty")
	}
	ns1 := a.namespace([]byte("load"))
	ns2 := a.namespace([]byte("load"))
	if ns1 != "load" || unsafe.StringData(ns1) != unsafe.StringData(ns2) {
		t.Errorf("namespaces %q and %q are not one string", ns1, ns2)
	}
	if other := a.namespace([]byte("other")); other != "other" {
		t.Errorf("namespace = %q", other)
	}
}
