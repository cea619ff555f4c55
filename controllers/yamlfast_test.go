package controllers

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

// Representative documents of the loadtest world (hack/loadtest/world.go writes them in this
// flow style) and a kubectl-style block document (config/samples/binding.yaml).
const (
	fastSecretDoc = `apiVersion: v1
kind: Secret
metadata: {name: k-000042, namespace: load, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: lk-000042, appSecret: secret-000042-0123456789abcdef, appCodes: LOADCODE-000042-QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ}
`
	fastCredentialDoc = `apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: c-000042, namespace: load, labels: {tier: t0}}
spec: {secretRef: {name: k-000042}, metadata: {tier: t0}}
`
	fastBindingDoc = `apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: b-00000, namespace: load}
spec:
  hosts: [b00000.load.example.com]
  routes: [{path: /orders, match: PathPrefix, methods: [GET, POST]}, {path: /v2/orders, match: PathPrefix}]
  app: {methods: [AppCode], credentials: [c-000000, c-010000, c-020000, c-030000, c-040000, c-050000, c-060000, c-070000, c-080000, c-090000]}
  customAuthorizer: {name: authz-cached}
  upstream: {contextHeaderPrefix: x-auth-, contextHeaders: [{context: user, header: x-user-id}]}
`
	fastAnonymousBindingDoc = `apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: b-00005, namespace: load}
spec:
  hosts: [b00005.load.example.com]
  routes: [{path: /healthz, match: PathPrefix, methods: [GET, POST]}, {path: /v2/healthz, match: PathPrefix}]
  anonymous: true
`
	fastAuthorizerDoc = `apiVersion: auth.portcullis.dev/v1alpha1
kind: CustomAuthorizer
metadata: {name: authz-open, namespace: load}
spec:
  url: http://127.0.0.1:36143/verify
  identitySources: [{in: Header, name: x-user-token}]
  cache: {ttl: 30s, maxEntries: 10000}
  timeout: 200ms
  failurePolicy: Allow
  userData: loadtest
`
	fastBlockDoc = `# Which routes need which factors.
apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata:
  name: orders
  namespace: shop
spec:
  hosts:
    - api.example.com
    - "*.shop.example.com"  # one or more labels in front, never shop.example.com itself
  routes:
    - path: /orders
      match: PathPrefix  # /orders and /orders/7, never /ordersX
      methods: [GET, POST]
    - path: /orders/export
      match: Exact
      methods: [GET]
  app:
    methods: [Signature, AppCode]
    credentials: [mobile-app]
  customAuthorizer:
    name: token-check
  upstream:
    # Authorizer context key k reaches the upstream as header x-auth-<k> ...
    contextHeaderPrefix: x-auth-
    # ... and context key user also as x-user-id.
    contextHeaders:
      - context: user
        header: x-user-id
`
)

// fastYAMLCases are documents with whether the fast path takes them. Every case, taken or
// not, is checked against sigsyaml.YAMLToJSONStrict, and they seed FuzzFastYAML.
var fastYAMLCases = []struct {
	name string
	doc  string
	ok   bool
}{
	// Documents of the loadtest world and the samples.
	{"secret", fastSecretDoc, true},
	{"credential", fastCredentialDoc, true},
	{"binding", fastBindingDoc, true},
	{"anonymous binding", fastAnonymousBindingDoc, true},
	{"authorizer", fastAuthorizerDoc, true},
	{"block document", fastBlockDoc, true},

	// Empty documents are null, as in sigs.k8s.io/yaml.
	{"empty", "", true},
	{"blank lines", "\n  \n\n", true},
	{"comments only", "# a comment\n  # another\n", true},
	{"comment without newline", "# c", true},

	// Block mappings.
	{"one key", "a: b", true},
	{"nested mappings", "a:\n  b:\n    c: d\n  e: f\ng: h\n", true},
	{"keys sorted bytewise", "b: 1\nB: 2\na: 3\nb-: 4\nA-b: 5\n/: 6\n", true},
	{"key starting with underscore", "_a: 1\n", false},
	{"more than twelve keys", "m: 1\nl: 2\nk: 3\nj: 4\ni: 5\nh: 6\ng: 7\nf: 8\ne: 9\nd: 10\nc: 11\nb: 12\na: 13\n", true},
	{"key with nothing", "a:\nb: c\n", true},
	{"key with nothing at the end", "a: b\nc:", true},
	{"key with nothing then comment", "a: # nothing\nb: c\n", true},
	{"key with trailing spaces", "key   : value\n", true},
	{"value with trailing spaces", "key: value   \n", true},
	{"spaces before value", "key:      value\n", true},
	{"root indented", "  a: b\n  c: d\n", true},
	{"trailing comment", "a: b # comment: with colon\n", true},
	{"comment with markup", "a: b # <k> & co\n", true},
	{"comment with non-ASCII", "# policy — for the shop\na: b # café\n", true},
	{"quoted key", "\"a b\": c\n'd': e\n", true},
	{"quoted empty key", "\"\": x\n", true},
	{"key with colon inside", "a:b: c\n", true},
	{"url value", "a: http://x\n", true},
	{"value with colon inside", "a: b:c\n", true},
	{"value with inner spaces", "a: b  c d\n", true},
	{"value with comma", "a: b, c\n", true},
	{"value with dash inside", "a: b - c\n", true},
	{"key with spaces then nothing", "a:   \nb: c\n", true},
	{"value with hash inside", "a: x#y\n", false},
	{"deep nesting", strings.Repeat("a:\n", 1) + "  b:\n    c:\n      d:\n        e: f\n", true},

	// Block sequences.
	{"sequence root", "- a\n- b\n", true},
	{"sequence under key", "a:\n  - x\n  - y\nb: c\n", true},
	{"indentless sequence", "a:\n- x\n- y\nb: c\n", true},
	{"indentless sequence last", "a:\n- x\n- y\n", true},
	{"sequence of mappings", "- a: 1\n  b: 2\n- c: 3\n", true},
	{"mapping with indentless sequence in a sequence", "- a:\n  - x\n  b: 1\n- y\n", true},
	{"nested compact sequence", "- - a\n  - b\n- c\n", true},
	{"- - nested", "- - - deep\n", true},
	{"entry with nothing", "- \n- b\n-\n", true},
	{"entry with nested mapping", "-\n  a: 1\n  b: 2\n- # comment\n  c: 3\n", true},
	{"entry key with nested", "- name:\n    x: 1\n  other: 2\n", true},
	{"entry spaced key", "-   a: 1\n    b: 2\n", true},
	{"sequence then key at same column", "a: 1\n- b\n", false},
	{"key after mapping in entry", "- a: 1\n  - x\n", false},

	// Flow collections.
	{"flow sequence", "a: [x, y, z]\n", true},
	{"flow mapping", "a: {b: c, d: e}\n", true},
	{"nested flow", "a: {b: [c, {d: e}], f: {g: [h, [i]]}}\n", true},
	{"empty flow", "a: []\nb: {}\nc: [ ]\nd: { }\n", true},
	{"flow root", "{a: b, c: [1, 2]}\n", true},
	{"flow sequence root", "[a, {b: c}]  # comment\n", true},
	{"flow quoted", "a: [\"x y\", 'z', \"\"]\nb: {\"k\": \"v\", 'l': 'w'}\n", true},
	{"flow in sequence", "- [a, b]\n- {c: d}\n", true},
	{"flow spaces", "a: [ x ,y , z ]\nb: {  c:   d  ,e: f }\n", true},
	{"flow trailing comma", "a: [x, y,]\n", false},
	{"flow mapping trailing comma", "a: {x: y,}\n", false},
	{"flow unterminated", "a: [x, y\n", false},
	{"flow multi-line", "a: [x,\n  y]\n", false},
	{"flow empty value", "a: {b: }\n", false},
	{"flow key without value", "a: {b, c}\n", false},
	{"flow colon without space", "a: {b:c}\n", false},
	{"flow url", "a: {url: http://x}\n", false},
	{"flow single pair", "a: [b: c]\n", false},
	{"flow comment inside", "a: [b, # c\n  d]\n", false},
	{"flow then garbage", "a: [b] c\n", false},
	{"flow then comment without space", "a: [b]#c\n", false},
	{"flow as key", "[a, b]: c\n", false},
	{"flow mismatched", "a: {b: c]\n", false},
	{"flow duplicate keys", "a: {b: 1, b: 2}\n", false},
	{"flow entry dash", "a: [-a, - b]\n", false},

	// Scalars.
	{"double quoted", "a: \"quoted # not a comment\"\n", true},
	{"single quoted", "a: 'it is: # ok'\n", true},
	{"quoted types stay strings", "a: \"true\"\nb: '42'\nc: \"null\"\nd: \"2030-01-01\"\n", true},
	{"quoted then comment", "a: \"x\" # c\n", true},
	{"quoted then comment without space", "a: \"x\"#c\n", false},
	{"quoted with escape", "a: \"x\\ty\"\n", false},
	{"single quoted with quote", "a: 'it''s'\n", false},
	{"quoted with html", "a: \"<b>\"\n", false},
	{"quoted with ampersand", "a: \"a & b\"\n", false},
	{"single quoted with double quote", "a: 'say \"hi\"'\n", false},
	{"quoted multi-line", "a: \"x\n  y\"\n", false},
	{"quoted then garbage", "a: \"x\" y\n", false},
	{"quoted key with space before colon", "\"a\" : b\n", false},
	{"multi-line plain", "a: b\n  c\n", false},
	{"plain after comment line", "a: x\n  # c\n  y\n", false},
	{"block literal", "a: |\n  x\n", false},
	{"block folded", "a: >\n  x\n", false},
	{"anchor and alias", "a: &x b\nc: *x\n", false},
	{"tag", "a: !!str 1\n", false},
	{"merge key", "a: {b: c}\n<<: {d: e}\n", false},
	{"question key", "? a\n: b\n", false},
	{"directive", "%YAML 1.1\na: b\n", false},
	{"document marker", "---\na: b\n", false},
	{"document end", "a: b\n...\n", false},
	{"backslash in plain", "a: b\\c\n", false},
	{"percent in plain", "a: 50%\n", false},

	// Types, as YAML 1.1 resolves them in go.yaml.in/yaml/v2.
	{"bools", "a: yes\nb: on\nc: Y\nd: n\ne: Off\nf: TRUE\ng: False\nh: NO\n", true},
	{"nulls", "a: ~\nb: null\nc: Null\nd: NULL\n", true},
	{"odd capitalisation", "a: yEs\n", false},
	{"odd null", "a: nULL\n", false},
	{"word prefixes are strings", "a: yess\nb: nope\nc: truex\nd: onion\ne: nullable\n", true},
	{"integers", "a: 0\nb: 42\nc: -7\nd: 123456789012345678\n", true},
	{"negative zero", "a: -0\n", false},
	{"plus int", "a: +5\n", false},
	{"leading zero", "a: 0123\n", false},
	{"underscores", "a: 1_000\n", false},
	{"hexadecimal", "a: 0x1F\n", false},
	{"octal", "a: 0o17\n", false},
	{"binary", "a: 0b101\n", false},
	{"sexagesimal", "a: 1:20\n", false},
	{"float", "a: 1.5\n", false},
	{"exponent", "a: 1e3\n", false},
	{"inf", "a: .inf\n", false},
	{"nan", "a: .NaN\n", false},
	{"negative inf", "a: -.inf\n", false},
	{"timestamp", "a: 2030-01-01\n", false},
	{"timestamp with time", "a: 2030-01-01T10:00:00Z\n", false},
	{"long int", "a: 1234567890123456789\n", false},
	{"durations", "a: 30s\nb: 200ms\nc: 1h30m\nd: 10.0.0.0/8x\n", true},
	{"version-like", "a: 1.2.3\n", false},
	{"path", "a: /v2/orders\n", true},
	{"bool key", "yes: a\n", false},
	{"null key", "null: a\n", false},
	{"tilde key", "~: a\n", false},
	{"int key", "1: a\n", false},
	{"string key starting with digit", "300s: a\n", true},
	{"tilde prefix", "a: ~x\n", false},

	// Errors and what the fast path refuses.
	{"duplicate keys", "a: 1\na: 2\n", false},
	{"duplicate keys quoted", "a: 1\n\"a\": 2\n", false},
	{"duplicate nested keys", "a:\n  b: 1\n  c: 2\n  b: 3\n", false},
	{"duplicate keys apart", "a: 1\nb: 2\nc: 3\na: 4\n", false},
	{"a: b: c", "a: b: c\n", false},
	{"key:value", "key:value\n", false},
	{"scalar root", "hello\n", false},
	{"tab indentation", "a:\n\tb: c\n", false},
	{"tab after value", "a: b\t\n", false},
	{"CRLF", "a: b\r\nc: d\r\n", false},
	{"bad indentation", "a:\n    b: 1\n  c: 2\n", false},
	{"dedent below root", "  a: b\nc: d\n", false},
	{"over-indented key", "a: 1\n  b: 2\n", false},
	{"sequence over-indented", "- a\n  - b\n", false},
	{"sequence under-indented item", "- a: 1\n b: 2\n", false},
	{"scalar on its own line", "a:\n  b\n", false},
	{"flow on its own line", "a:\n  [b]\n", false},
	{"empty key", ": a\n", false},
	{"lone dash value", "a: -\n", false},
	{"dash space value", "a: - b\n", false},
	{"non-ASCII value", "a: café\n", false},
	{"line separator in comment", "a: b # x\u2028c: d\n", false},
	{"invalid UTF-8 in comment", "a: b # \xff\n", false},
	{"control character", "a: b\x01\n", false},
	{"BOM", "\ufeffa: b\n", false},
	{"long key", strings.Repeat("k", 1100) + ": v\n", false},
	{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", false},
	{"deep flow", "a: " + strings.Repeat("[", 60) + "x" + strings.Repeat("]", 60) + "\n", true},
	{"deep block", deepBlock(30), true},
	{"too deep block", deepBlock(40), false},
	{"duplicate keys among many", "m: 1\nl: 2\nk: 3\nj: 4\ni: 5\nh: 6\ng: 7\nf: 8\ne: 9\nd: 10\nc: 11\nb: 12\nk: 13\n", false},
}

// deepBlock is a block mapping nested 2*depth+1 collections deep: l: [{m: 0, l: [{m: 1, ...}]}].
func deepBlock(depth int) string {
	var b strings.Builder
	b.WriteString("l:\n")
	for i := range depth {
		pad := strings.Repeat("  ", i)
		b.WriteString(pad + "- m: " + strconv.Itoa(i) + "\n" + pad + "  l:\n")
	}
	return b.String()
}

// checkFastYAML asserts the fast path's contract for doc: when it converts doc, sigs.k8s.io/
// yaml converts it too, to the same bytes. It returns whether the fast path converted doc.
func checkFastYAML(t testing.TB, doc []byte) bool {
	t.Helper()
	got, ok := fastYAMLToJSON(nil, doc)
	if !ok {
		if got != nil {
			t.Errorf("fastYAMLToJSON(%q) = %q with ok == false", doc, got)
		}
		return false
	}
	want, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		t.Fatalf("fastYAMLToJSON(%q) = %s, ok; sigsyaml.YAMLToJSONStrict fails: %v", doc, got, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("fastYAMLToJSON(%q)\n got %s\nwant %s", doc, got, want)
	}
	return true
}

func TestFastYAMLToJSON(t *testing.T) {
	for _, tc := range fastYAMLCases {
		t.Run(tc.name, func(t *testing.T) {
			if ok := checkFastYAML(t, []byte(tc.doc)); ok != tc.ok {
				_, err := sigsyaml.YAMLToJSONStrict([]byte(tc.doc))
				t.Errorf("fastYAMLToJSON(%q): ok == %v, want %v (sigsyaml.YAMLToJSONStrict: %v)", tc.doc, ok, tc.ok, err)
			}
		})
	}
}

// TestFastYAMLToJSONGenerated checks the contract on documents built from manifest-like
// lines (indentation, sequence entries, keys, values and comments, valid or not) with a fixed
// seed: random bytes (FuzzFastYAML) rarely form the nested structures where indentation rules
// hide.
func TestFastYAMLToJSONGenerated(t *testing.T) {
	keys := []string{"a", "b", "a b", "'a'", `"b"`, "k:x", "300s", "A", "", "yes", "1", "-k", "/k", "a ", "~"}
	values := []string{"x", "yes", "No", "1", "-1", "0", "012", `"s # t"`, "'u'", "[]", "{}", "[a, b]",
		"{a: b}", "{a: [b, {c: d}]}", "[a, [b]]", "a:b", "http://h:1/p", "30s", "~", "null", "1.5", "x y",
		"a, b", "[a,]", "{a: b, a: c}", "-x", "- x", "x #c", "x#c", "{a:b}", "[a: b]", "", ".inf", "1_0",
		"2030-01-01", "ON", "yEs", "|", "&a x", "*a"}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	converted := 0
	var doc []byte
	for range n {
		doc = doc[:0]
		for range 1 + r.IntN(8) {
			if r.IntN(10) == 0 {
				doc = append(doc, strings.Repeat(" ", r.IntN(7))+"# comment\n"...)
				continue
			}
			doc = append(doc, strings.Repeat(" ", 2*r.IntN(4)+r.IntN(4)/3)...)
			for r.IntN(3) == 0 {
				doc = append(doc, "- "...)
			}
			if r.IntN(4) != 0 {
				doc = append(doc, keys[r.IntN(len(keys))]...)
				doc = append(doc, ": "[:1+r.IntN(2)]...)
			}
			doc = append(doc, values[r.IntN(len(values))]...)
			if r.IntN(8) == 0 {
				doc = append(doc, " # c"...)
			}
			doc = append(doc, '\n')
		}
		if checkFastYAML(t, doc) {
			converted++
		}
	}
	// About 5% of these documents are in the fast path's subset; far fewer means it broke.
	if converted < n/50 {
		t.Errorf("the fast path converted %d of %d documents, want at least %d", converted, n, n/50)
	}
	t.Logf("the fast path converted %d of %d documents", converted, n)
}

// TestFastYAMLToJSONOutputIsOwned checks that the output does not alias the parser's reused
// buffer: a later conversion must not change an earlier result.
func TestFastYAMLToJSONOutputIsOwned(t *testing.T) {
	first, ok := fastYAMLToJSON(nil, []byte("a: b\n"))
	if !ok {
		t.Fatal("a: b did not take the fast path")
	}
	for range 10 {
		if _, ok := fastYAMLToJSON(nil, []byte("c: [d, e, f, g, h, i, j]\n")); !ok {
			t.Fatal("the second document did not take the fast path")
		}
	}
	if string(first) != `{"a":"b"}` {
		t.Errorf("first result changed to %s", first)
	}
	// The JSON is appended to dst.
	if out, ok := fastYAMLToJSON([]byte("x"), []byte("a: b\n")); !ok || string(out) != `x{"a":"b"}` {
		t.Errorf("appended to x: %q, %v", out, ok)
	}
}

// TestFastYAMLToJSONSamples converts every document of the sample policies and of the engine's
// test world: all take the fast path but those listed.
func TestFastYAMLToJSONSamples(t *testing.T) {
	// A Secret whose appCodes is a block scalar ("|"), which the fast path leaves to sigs.
	wantFallback := []string{"../authz/engine/enginetest/world/00-secrets.yaml#1"}
	var files []string
	for _, pattern := range []string{"../config/samples/*.yaml", "../authz/engine/enginetest/world/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 7 {
		t.Fatalf("found only %d sample files: %v", len(files), files)
	}
	var fallback []string
	docs := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitYAMLDocs(data) {
			docs++
			if !checkFastYAML(t, doc) {
				fallback = append(fallback, file+"#"+strconv.Itoa(i+1))
			}
		}
	}
	if !slices.Equal(fallback, wantFallback) {
		t.Errorf("documents that fall back: %q, want %q", fallback, wantFallback)
	}
	t.Logf("%d documents in %d files, %d fall back", docs, len(files), len(fallback))
}

// splitYAMLDocs splits a file at its "---" lines (the samples have no other separators).
func splitYAMLDocs(data []byte) [][]byte {
	var docs [][]byte
	start := 0
	for i := 0; i <= len(data); {
		end := len(data)
		if n := bytes.IndexByte(data[i:], '\n'); n >= 0 {
			end = i + n
		}
		if string(bytes.TrimRight(data[i:end], " ")) == "---" {
			docs = append(docs, data[start:i])
			start = end + 1
		}
		if end == len(data) {
			break
		}
		i = end + 1
	}
	return append(docs, data[min(start, len(data)):])
}

// BenchmarkYAMLToJSON compares the fast path with sigs.k8s.io/yaml on the loadtest world's
// documents and a kubectl-style one: go test -bench YAMLToJSON -run '^$' ./controllers.
func BenchmarkYAMLToJSON(b *testing.B) {
	docs := []struct{ name, doc string }{
		{"secret", fastSecretDoc},
		{"credential", fastCredentialDoc},
		{"binding", fastBindingDoc},
		{"block", fastBlockDoc},
	}
	convert := map[string]func([]byte) bool{
		"fast": func(doc []byte) bool { _, ok := fastYAMLToJSON(nil, doc); return ok },
		"sigs": func(doc []byte) bool { _, err := sigsyaml.YAMLToJSONStrict(doc); return err == nil },
	}
	for _, how := range []string{"fast", "sigs"} {
		b.Run(how, func(b *testing.B) {
			for _, d := range docs {
				doc := []byte(d.doc)
				b.Run(d.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(doc)))
					for b.Loop() {
						if !convert[how](doc) {
							b.Fatalf("%s did not convert %s", how, d.name)
						}
					}
				})
			}
		})
	}
}
