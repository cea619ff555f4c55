package authorizer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"strings"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// Context limits (DESIGN.md §4).
const (
	maxContextKeys  = 64
	maxContextBytes = 8 << 10
	maxContextKey   = 32
)

// parseAnswer reads the body of an HTTP 200 answer in the given format. It is strict: the
// body must be one JSON object and nothing else, with no key twice in any object, the
// format's fields with their exact names (a field that differs from one only in case is
// rejected, never guessed), types and values. Fields a format does not define are ignored,
// so that functions may add their own (a message, a request id); they must still be valid
// JSON without duplicate keys. Anything else is a "malformed" failure, and an allow whose
// context breaks the limits a "context" failure; a deny's context is not kept, and only
// needs to be an object.
//
// The formats:
//   - APIG: {"status":"allow"|"deny","context":{...}}, or that JSON as the string "body" of
//     the function-platform wrapping {"statusCode":200,"body":"...","headers":{...},
//     "isBase64Encoded":false} (headers and isBase64Encoded optional; with isBase64Encoded
//     true the body is the base64 of the JSON). Only one level of wrapping.
//   - Tencent: {"api-auth":true|false}.
//   - MPaaS: {"success":true|false,"principal":{...}}, principal being the context.
func parseAnswer(format authv1alpha1.ResponseFormat, body []byte) (allow bool, kvs []KV, err *Error) {
	top, err := parseObject(body)
	if err != nil {
		return false, nil, err
	}
	switch format {
	case authv1alpha1.ResponseFormatAPIG, "":
		return parseAPIG(top, true)
	case authv1alpha1.ResponseFormatTencent:
		v, err := field(top, "api-auth")
		if err != nil {
			return false, nil, err
		}
		if v == nil || v.kind != 'b' {
			return false, nil, malformed(`"api-auth" must be true or false`)
		}
		return v.b, nil, nil
	case authv1alpha1.ResponseFormatMPaaS:
		v, err := field(top, "success")
		if err != nil {
			return false, nil, err
		}
		if v == nil || v.kind != 'b' {
			return false, nil, malformed(`"success" must be true or false`)
		}
		p, err := field(top, "principal")
		if err != nil {
			return false, nil, err
		}
		return withContext(v.b, p, "principal")
	default:
		return false, nil, malformed("unknown response format")
	}
}

func parseAPIG(top []jfield, outer bool) (bool, []KV, *Error) {
	sc, err := field(top, "statusCode")
	if err != nil {
		return false, nil, err
	}
	if sc != nil {
		if !outer {
			return false, nil, malformed("a wrapped answer wraps another")
		}
		return parseWrapped(top, sc)
	}
	st, err := field(top, "status")
	if err != nil {
		return false, nil, err
	}
	if st == nil || st.kind != 's' || (st.text != "allow" && st.text != "deny") {
		return false, nil, malformed(`"status" must be "allow" or "deny"`)
	}
	c, err := field(top, "context")
	if err != nil {
		return false, nil, err
	}
	return withContext(st.text == "allow", c, "context")
}

// parseWrapped reads the function-platform wrapping of an APIG answer.
func parseWrapped(top []jfield, sc *jvalue) (bool, []KV, *Error) {
	for _, name := range [...]string{"status", "context"} {
		if v, err := field(top, name); err != nil || v != nil {
			return false, nil, malformed(`a wrapped answer has "status" or "context" beside "statusCode"`)
		}
	}
	if sc.kind != 'n' || sc.text != "200" {
		return false, nil, malformed(`"statusCode" must be 200`)
	}
	b64, err := field(top, "isBase64Encoded")
	if err != nil {
		return false, nil, err
	}
	if b64 != nil && b64.kind != 'b' {
		return false, nil, malformed(`"isBase64Encoded" must be true or false`)
	}
	h, err := field(top, "headers")
	if err != nil {
		return false, nil, err
	}
	if h != nil && h.kind != 'o' {
		return false, nil, malformed(`"headers" must be an object`)
	}
	body, err := field(top, "body")
	if err != nil {
		return false, nil, err
	}
	if body == nil || body.kind != 's' {
		return false, nil, malformed(`"body" must be a string`)
	}
	inner := []byte(body.text)
	if b64 != nil && b64.b {
		dec, derr := base64.StdEncoding.DecodeString(body.text)
		if derr != nil {
			return false, nil, malformed(`"body" is not base64`)
		}
		inner = dec
	}
	fields, err := parseObject(inner)
	if err != nil {
		return false, nil, err
	}
	return parseAPIG(fields, false)
}

// withContext returns the verdict with the context of an allow; c may be nil (absent).
func withContext(allow bool, c *jvalue, name string) (bool, []KV, *Error) {
	if c == nil {
		return allow, nil, nil
	}
	if c.kind != 'o' {
		return false, nil, malformed(`"` + name + `" must be an object`)
	}
	if !allow {
		return false, nil, nil
	}
	kvs, err := buildContext(c.fields)
	if err != nil {
		return false, nil, err
	}
	return true, kvs, nil
}

// buildContext validates an allow's context and renders it sorted by key.
func buildContext(fields []jfield) ([]KV, *Error) {
	if len(fields) == 0 {
		return nil, nil
	}
	if len(fields) > maxContextKeys {
		return nil, badContext("more than 64 keys")
	}
	kvs := make([]KV, 0, len(fields))
	total := 0
	for i := range fields {
		f := &fields[i]
		if !validContextKey(f.key) {
			return nil, badContext("a key does not match ^[A-Za-z][A-Za-z0-9_-]{0,31}$")
		}
		var v string
		switch f.val.kind {
		case 's', 'n':
			v = f.val.text
		case 'b':
			v = "false"
			if f.val.b {
				v = "true"
			}
		default:
			return nil, badContext("a value is not a string, number or boolean")
		}
		if hasControl(v) {
			return nil, badContext("a value contains a control character")
		}
		if total += len(f.key) + len(v); total > maxContextBytes {
			return nil, badContext("keys and values exceed 8 KiB")
		}
		kvs = append(kvs, KV{Key: f.key, Value: v})
	}
	slices.SortFunc(kvs, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return kvs, nil
}

func validContextKey(k string) bool {
	if len(k) == 0 || len(k) > maxContextKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// hasControl reports whether v holds a byte that must not reach an upstream header value:
// any C0 control but horizontal tab (CR, LF and NUL among them), or DEL.
func hasControl(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// jvalue is a JSON value, read as deep as the answer formats look: the members of the top
// object and of the objects it holds. Deeper values are checked (syntax, duplicate keys)
// and only their kind is kept.
type jvalue struct {
	kind   byte   // 'o' object, 'a' array, 's' string, 'n' number, 'b' boolean, 'z' null
	text   string // a string, or a number's literal text
	b      bool
	fields []jfield // an object's members, in order (depth < keepDepth)
}

type jfield struct {
	key string
	val jvalue
}

const keepDepth = 2

// field returns the member name of an object; nil when absent. A member whose name differs
// from name only in case is an error: the answer is ambiguous.
func field(fields []jfield, name string) (*jvalue, *Error) {
	var v *jvalue
	for i := range fields {
		switch k := fields[i].key; {
		case k == name:
			v = &fields[i].val
		case strings.EqualFold(k, name):
			return nil, malformed(`a field is named like "` + name + `" but differs in case`)
		}
	}
	return v, nil
}

// parseObject reads b as exactly one JSON object (whitespace around it allowed).
func parseObject(b []byte) ([]jfield, *Error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readValue(dec, 0)
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

var errSyntax = malformed("not valid JSON")

func readValue(dec *json.Decoder, depth int) (jvalue, *Error) {
	tok, err := dec.Token()
	if err != nil {
		return jvalue{}, errSyntax
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return readObject(dec, depth)
		case '[':
			for dec.More() {
				if _, err := readValue(dec, depth+1); err != nil {
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

func readObject(dec *json.Decoder, depth int) (jvalue, *Error) {
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
		m, perr := readValue(dec, depth+1)
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
