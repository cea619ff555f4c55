package authorizer

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// oracleParseObject is the parser parseObject replaced, on encoding/json's Decoder.Token: the
// reference it must agree with, but for nesting deeper than maxAnswerDepth, which it allowed.
func oracleParseObject(b []byte) ([]jfield, *Error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := oracleReadValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if v.kind != 'o' {
		return nil, malformed("not a JSON object")
	}
	if _, terr := dec.Token(); terr != io.EOF {
		return nil, malformed("data after the JSON object")
	}
	return v.fields, nil
}

func oracleReadValue(dec *json.Decoder, depth int) (jvalue, *Error) {
	tok, err := dec.Token()
	if err != nil {
		return jvalue{}, errSyntax
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return oracleReadObject(dec, depth)
		case '[':
			for dec.More() {
				if _, err := oracleReadValue(dec, depth+1); err != nil {
					return jvalue{}, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return jvalue{}, errSyntax
			}
			return jvalue{kind: 'a'}, nil
		}
		return jvalue{}, errSyntax
	case string:
		return jvalue{kind: 's', text: t}, nil
	case json.Number:
		return jvalue{kind: 'n', text: string(t)}, nil
	case bool:
		return jvalue{kind: 'b', b: t}, nil
	case nil:
		return jvalue{kind: 'z'}, nil
	}
	return jvalue{}, errSyntax
}

func oracleReadObject(dec *json.Decoder, depth int) (jvalue, *Error) {
	v := jvalue{kind: 'o'}
	var seen map[string]struct{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jvalue{}, errSyntax
		}
		key, ok := tok.(string)
		if !ok {
			return jvalue{}, errSyntax
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		if _, dup := seen[key]; dup {
			return jvalue{}, malformed("a key appears twice in one object")
		}
		seen[key] = struct{}{}
		m, perr := oracleReadValue(dec, depth+1)
		if perr != nil {
			return jvalue{}, perr
		}
		if depth < keepDepth {
			v.fields = append(v.fields, jfield{key: key, val: m})
		}
	}
	if _, err := dec.Token(); err != nil {
		return jvalue{}, errSyntax
	}
	return v, nil
}

// agreesWithOracle checks parseObject against oracleParseObject on b: the same fields, or the
// same failure. Past maxAnswerDepth only parseObject fails, with errDepth.
func agreesWithOracle(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := parseObject(b)
	want, werr := oracleParseObject(b)
	if gerr == errDepth {
		if nesting(b) <= maxAnswerDepth {
			t.Fatalf("%q: depth failure at nesting %d", b, nesting(b))
		}
		return
	}
	if gerr != nil || werr != nil {
		if gerr == nil || werr == nil || gerr.msg != werr.msg {
			t.Fatalf("%q: failure %v, the oracle's %v", b, gerr, werr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
	}
}

// nesting is the deepest nesting of objects and arrays in b (0 for a scalar), strings
// skipped.
func nesting(b []byte) int {
	depth, deepest, in := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func TestParseObjectMatchesOracle(t *testing.T) {
	for _, s := range []string{
		`{}`, ` {} `, "\t\r\n{\"a\":1}\n", `{"a":"b","c":{"d":"e","f":{"g":"h"}},"i":[1,{"j":2}]}`,
		`{"a":1,"a":2}`, `{"a":1,"a"`, `{"a":{"b":1,"b":tru}}`, `{"a":[{"b":1,"b":2}]}`,
		`{"\u0061":1,"a":2}`, `{"\ud800":1,"\ufffd":2}`, `{"\xff":1,"\xfe":2}`, `{"é":1,"\u00e9":2}`,
		`{"s":"\ud83d\ude42 \ud83d x \ude42 \ud83d\u0041 \/\b\f\n\r\t\"\\"}`, `{"s":"\xed\xa0\x80\xc3"}`,
		`{"s":"a` + "\x01" + `"}`, `{"s":"a` + "\x1f" + `"}`, `{"s":"a` + "\x7f" + `"}`, `{"s":"\x"}`, `{"s":"\u12"}`, `{"s":"\u12g4"}`, `{"s":"unterminated}`,
		`{"n":-0,"m":1.5e+10,"o":0.1E-2,"p":-12}`, `{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`, `{"n":1e}`, `{"n":+1}`,
		`{"b":true,"c":false,"d":null}`, `{"b":tru}`, `{"b":truex}`, `{"b":nul}`,
		`{"a":1,}`, `{,"a":1}`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{1:2}`,
		`{"a":1}x`, `{"a":1}}`, `{"a":1} {}`, `{"a":1}` + "\x00", `[]`, `"s"`, `1x`, `truex`, `null`, ``, ` `, `{`, `}`,
		"\xef\xbb\xbf{}", `{"a":{}}`, `{"a":{"b":{}}}`, `{"a":[]}`,
		`{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k1":2}`,
		`{"k1":1,"k2":1,"k3":1,"k4":1,"k5":1,"k6":1,"k7":1,"k8":1,"k9":1,"k10":2}`,
		strings.Repeat("[", 1001) + strings.Repeat("]", 1001), `{"a":` + strings.Repeat("[", 999) + strings.Repeat("]", 999) + `}`,
		`{"a":` + strings.Repeat(`{"b":`, 1000) + "1" + strings.Repeat("}", 1000) + `}`,
	} {
		agreesWithOracle(t, []byte(s))
	}
}

func TestParseObjectDepth(t *testing.T) {
	for _, tt := range []struct {
		depth int
		fails bool
	}{{maxAnswerDepth - 1, false}, {maxAnswerDepth, false}, {maxAnswerDepth + 1, true}, {1 << 19, true}} {
		// An object holding arrays nested depth-1 deep: nesting depth in all.
		b := []byte(`{"a":` + strings.Repeat("[", tt.depth-1) + strings.Repeat("]", tt.depth-1) + `}`)
		_, err := parseObject(b)
		if (err == errDepth) != tt.fails || (err != nil && err != errDepth) {
			t.Errorf("nesting %d: %v", tt.depth, err)
		}
	}
}

func BenchmarkParseAnswer(b *testing.B) {
	body := []byte(`{"status":"allow","context":{"user":"u-1","tier":"gold"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseAnswer(apig, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOracleParseObject(b *testing.B) {
	body := []byte(`{"status":"allow","context":{"user":"u-1","tier":"gold"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := oracleParseObject(body); err != nil {
			b.Fatal(err)
		}
	}
}
