package authorizer

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/internal/jsonstr"
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

// maxAnswerDepth bounds the nesting of objects and arrays in an answer; deeper is malformed.
// The formats read two levels. (The encoding/json Decoder this parser replaced had no bound:
// a 1 MiB answer of "[" recursed a million times.)
const maxAnswerDepth = 1000

// parseObject reads b as exactly one JSON object (whitespace around it allowed). It reads b
// itself rather than through encoding/json's Decoder, which copies the input, allocates every
// token and an error for every value it ends: most of a cache miss's parsing cost. It
// accepts what that Decoder accepts, down to how strings are unescaped and invalid UTF-8
// replaced, but for nesting past maxAnswerDepth (the tests compare the two). The strings it
// returns are copies: b may be reused.
func parseObject(b []byte) ([]jfield, *Error) {
	p := jparser{b: b}
	p.space()
	v, err := p.value(0, true)
	if err != nil {
		return nil, err
	}
	if v.kind != 'o' {
		return nil, malformed("not a JSON object")
	}
	p.space()
	if p.i != len(p.b) {
		return nil, malformed("data after the JSON object")
	}
	return v.fields, nil
}

var (
	errSyntax = malformed("not valid JSON")
	errDepth  = malformed("nested deeper than " + strconv.Itoa(maxAnswerDepth) + " levels")
)

// jparser reads one JSON value from b[i:].
type jparser struct {
	b []byte
	i int
}

// peek returns the byte at i; 0 at the end (never valid where peek is used).
func (p *jparser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *jparser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value reads the value at i, which is at the given depth (the top object is at 0). keep says
// whether the caller keeps it: strings and numbers are copied only then.
func (p *jparser) value(depth int, keep bool) (jvalue, *Error) {
	switch c := p.peek(); {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str(keep)
		return jvalue{kind: 's', text: s}, err
	case c == '-' || c >= '0' && c <= '9':
		return p.number(keep)
	case c == 't':
		return p.literal("true", jvalue{kind: 'b', b: true})
	case c == 'f':
		return p.literal("false", jvalue{kind: 'b'})
	case c == 'n':
		return p.literal("null", jvalue{kind: 'z'})
	}
	return jvalue{}, errSyntax
}

func (p *jparser) literal(lit string, v jvalue) (jvalue, *Error) {
	if !bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
		return jvalue{}, errSyntax
	}
	p.i += len(lit)
	return v, nil
}

// object reads an object; its members are kept above keepDepth. A key seen twice is an error
// at once, before its value is read.
func (p *jparser) object(depth int) (jvalue, *Error) {
	if depth >= maxAnswerDepth {
		return jvalue{}, errDepth
	}
	keep := depth < keepDepth
	v := jvalue{kind: 'o'}
	var seen keySet
	p.i++ // {
	p.space()
	if p.peek() == '}' {
		p.i++
		return v, nil
	}
	for {
		if p.peek() != '"' {
			return jvalue{}, errSyntax
		}
		key, err := p.str(true)
		if err != nil {
			return jvalue{}, err
		}
		if !seen.add(key) {
			return jvalue{}, malformed("a key appears twice in one object")
		}
		p.space()
		if p.peek() != ':' {
			return jvalue{}, errSyntax
		}
		p.i++
		p.space()
		m, err := p.value(depth+1, keep)
		if err != nil {
			return jvalue{}, err
		}
		if keep {
			v.fields = append(v.fields, jfield{key: key, val: m})
		}
		p.space()
		switch p.peek() {
		case ',':
			p.i++
			p.space()
		case '}':
			p.i++
			return v, nil
		default:
			return jvalue{}, errSyntax
		}
	}
}

// array checks an array; its elements are never kept.
func (p *jparser) array(depth int) (jvalue, *Error) {
	if depth >= maxAnswerDepth {
		return jvalue{}, errDepth
	}
	p.i++ // [
	p.space()
	if p.peek() == ']' {
		p.i++
		return jvalue{kind: 'a'}, nil
	}
	for {
		if _, err := p.value(depth+1, false); err != nil {
			return jvalue{}, err
		}
		p.space()
		switch p.peek() {
		case ',':
			p.i++
			p.space()
		case ']':
			p.i++
			return jvalue{kind: 'a'}, nil
		default:
			return jvalue{}, errSyntax
		}
	}
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and keeps its text.
func (p *jparser) number(keep bool) (jvalue, *Error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return jvalue{}, errSyntax
	}
	if p.peek() == '.' {
		p.i++
		if !p.digits() {
			return jvalue{}, errSyntax
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if !p.digits() {
			return jvalue{}, errSyntax
		}
	}
	v := jvalue{kind: 'n'}
	if keep {
		v.text = string(p.b[start:p.i])
	}
	return v, nil
}

// digits skips [0-9]* and reports whether there was one.
func (p *jparser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// str reads a string, unescaped as encoding/json unescapes it (a surrogate that is not half of
// a pair, and each byte that is not UTF-8, become U+FFFD); the copy only when keep.
func (p *jparser) str(keep bool) (string, *Error) {
	p.i++ // "
	start := p.i
	plain := true // no escape and valid UTF-8: the string is the bytes
	for {
		if p.i >= len(p.b) {
			return "", errSyntax
		}
		switch c := p.b[p.i]; {
		case c == '"':
			raw := p.b[start:p.i]
			p.i++
			switch {
			case !keep:
				return "", nil
			case plain:
				return string(raw), nil
			}
			return unquote(raw), nil
		case c == '\\':
			plain = false
			p.i++
			if e := p.peek(); e == 'u' {
				if _, ok := jsonstr.Hex4(p.b[p.i+1:]); !ok {
					return "", errSyntax
				}
				p.i += 5
			} else if _, ok := jsonstr.Unescape(e); ok {
				p.i++
			} else {
				return "", errSyntax
			}
		case c < 0x20:
			return "", errSyntax
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			p.i += size
		}
	}
}

// unquote decodes the inside of a string that str has checked.
func unquote(raw []byte) string {
	out := make([]byte, 0, len(raw)+8)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			if e, ok := jsonstr.Unescape(raw[i+1]); ok {
				out = append(out, e)
				i += 2
				continue
			}
			r, _ := jsonstr.Hex4(raw[i+2:]) // \u: str checked the digits
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					low, _ := jsonstr.Hex4(raw[i+2:])
					if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
						out = utf8.AppendRune(out, pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r)
			i += size
		}
	}
	return string(out)
}

// keySet holds the keys of one object, to find one given twice: a short list, a map past it.
type keySet struct {
	n     int
	short [8]string
	long  map[string]struct{}
}

// add adds k and reports whether it was new.
func (s *keySet) add(k string) bool {
	if s.long != nil {
		if _, dup := s.long[k]; dup {
			return false
		}
		s.long[k] = struct{}{}
		return true
	}
	for _, x := range s.short[:s.n] {
		if x == k {
			return false
		}
	}
	if s.n < len(s.short) {
		s.short[s.n] = k
		s.n++
		return true
	}
	s.long = make(map[string]struct{}, 2*len(s.short))
	for _, x := range s.short {
		s.long[x] = struct{}{}
	}
	s.long[k] = struct{}{}
	return true
}
