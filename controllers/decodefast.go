package controllers

import (
	"encoding/base64"
	"unicode/utf8"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/internal/jsonstr"
)

// This file is a fast path for the file source's typed decode. kjson.UnmarshalStrict walks
// the object with reflection, keeps a field stack for its strict errors and assigns maps
// through reflect: ~5 µs and 45 allocations for a five-line Secret, and a large policy
// directory holds hundreds of thousands of Secrets and Credentials. fastDecode scans the JSON
// once and fills the typed object directly, for the documents those two kinds are written
// as; on anything else it gives up and the caller decodes strictly, which also reports
// every error. Every rule below errs on the side of giving up: falling back is always
// correct, only slower.
//
// What it accepts, and nothing else:
//   - JSON whitespace anywhere JSON allows it, and nothing after the object but whitespace.
//   - Strings: valid UTF-8, no control characters, and the escapes \" \\ \/ \b \f \n \r \t
//     and \uXXXX outside the surrogate range (encoding/json replaces lone or malformed
//     surrogates and invalid UTF-8 with U+FFFD; those give up). Keys are matched after
//     unescaping, exactly (case-sensitive), as the strict decoder does.
//   - Secret: apiVersion, kind, metadata, type, stringData, data (base64 as encoding/json
//     decodes []byte: base64.StdEncoding), immutable (true or false).
//   - Credential: apiVersion, kind, metadata, spec{secretRef{name}, disabled, allowedCIDRs,
//     metadata}. No expiresAt, no status.
//   - metadata: name, namespace, labels, annotations.
//   - Maps of strings and lists of strings, {} and [] decoding to empty, non-nil values.
//
// It gives up on null, numbers, a value of the wrong type, any other field, and a key that
// appears twice in one object (a strict error).

// fastDecode fills obj, a freshly constructed *corev1.Secret or *authv1alpha1.Credential,
// from the JSON object j exactly as kjson.UnmarshalStrict(j, obj) would when that returns
// neither an error nor strict errors, and reports true. It reports false, leaving obj
// partly filled, when j uses anything it does not handle (see above) or is invalid; the
// caller then decodes a new object strictly. Other types report false.
//
// Maps of labels, annotations and spec.metadata are taken from maps if one was decoded from
// the same text before, and added to it otherwise: the documents of a directory
// repeat a few label sets thousands of times, and the objects are read-only once loaded.
func fastDecode(j []byte, obj client.Object, maps sharedMaps, names *nameArena) bool {
	s := jsonScan{j: j, maps: maps, names: names}
	var ok bool
	switch o := obj.(type) {
	case *corev1.Secret:
		ok = s.secret(o)
	case *authv1alpha1.Credential:
		ok = s.credential(o)
	default:
		return false
	}
	if !ok {
		return false
	}
	s.space()
	return s.i == len(s.j)
}

// jsonScan reads a JSON document from its start, one value at a time.
type jsonScan struct {
	j     []byte
	i     int    // the next byte to read
	buf   []byte // a string with escapes, unescaped; reused
	maps  sharedMaps
	names *nameArena // nil: names are allocated one by one
}

// nameArena makes the names and namespaces of decoded objects, which live as long as the
// objects, from shared blocks. Allocated one by one, a name of 8 bytes (c-000000) takes a
// 16-byte block of Go's allocator for small strings, which stays whole while any string in
// it lives: the names of 100,000 Credentials and their Secrets took 4.6 MB. A namespace,
// nearly always the one before, is made once. The blocks are never written where a string
// was made. A block lives while any of its names does: after a reload that changes a few
// objects, their names may keep a 4 KB block each.
type nameArena struct {
	block []byte
	ns    string // the last namespace made
}

// nameBlock is the size of a nameArena's blocks.
const nameBlock = 4096

func (a *nameArena) make(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if len(v) > cap(a.block)-len(a.block) {
		if len(v) > nameBlock/8 {
			return string(v) // a long name would waste the rest of a block
		}
		a.block = make([]byte, 0, nameBlock)
	}
	start := len(a.block)
	a.block = append(a.block, v...)
	return unsafe.String(&a.block[start], len(v))
}

func (a *nameArena) namespace(v []byte) string {
	if string(v) != a.ns {
		a.ns = a.make(v)
	}
	return a.ns
}

// name reads a string that names an object: from the arena when there is one.
func (s *jsonScan) name(namespace bool) (string, bool) {
	if s.names == nil {
		return s.text()
	}
	v, ok := s.str()
	if !ok {
		return "", false
	}
	if namespace {
		return s.names.namespace(v), true
	}
	return s.names.make(v), true
}

// sharedMaps holds maps of strings by the JSON text they were decoded from.
type sharedMaps map[string]map[string]string

// sharedStringMap reads a map of strings, or takes the one decoded before from the same text.
func (s *jsonScan) sharedStringMap() (map[string]string, bool) {
	s.space()
	start := s.i
	if start >= len(s.j) || s.j[start] != '{' {
		return nil, false
	}
	end := skipValue(s.j, start)
	if m, ok := s.maps[string(s.j[start:end])]; ok {
		s.i = end
		return m, true
	}
	m, ok := s.stringMap()
	if ok && s.i == end {
		s.maps[string(s.j[start:end])] = m
	}
	return m, ok
}

// secret reads a Secret object.
func (s *jsonScan) secret(o *corev1.Secret) bool {
	return s.object(func(key []byte) (bit uint8, ok bool) {
		switch string(key) {
		case "apiVersion":
			o.APIVersion, ok = s.text()
			return 1 << 0, ok
		case "kind":
			o.Kind, ok = s.text()
			return 1 << 1, ok
		case "metadata":
			return 1 << 2, s.meta(&o.ObjectMeta)
		case "type":
			var t string
			t, ok = s.text()
			o.Type = corev1.SecretType(t)
			return 1 << 3, ok
		case "stringData":
			o.StringData, ok = s.stringMap()
			return 1 << 4, ok
		case "data":
			o.Data, ok = s.bytesMap()
			return 1 << 5, ok
		case "immutable":
			var b bool
			if b, ok = s.boolean(); ok {
				o.Immutable = &b
			}
			return 1 << 6, ok
		}
		return 0, false
	})
}

// credential reads a Credential object.
func (s *jsonScan) credential(o *authv1alpha1.Credential) bool {
	return s.object(func(key []byte) (bit uint8, ok bool) {
		switch string(key) {
		case "apiVersion":
			o.APIVersion, ok = s.text()
			return 1 << 0, ok
		case "kind":
			o.Kind, ok = s.text()
			return 1 << 1, ok
		case "metadata":
			return 1 << 2, s.meta(&o.ObjectMeta)
		case "spec":
			return 1 << 3, s.credentialSpec(&o.Spec)
		}
		return 0, false
	})
}

// credentialSpec reads a Credential's spec.
func (s *jsonScan) credentialSpec(spec *authv1alpha1.CredentialSpec) bool {
	return s.object(func(key []byte) (bit uint8, ok bool) {
		switch string(key) {
		case "secretRef":
			return 1 << 0, s.secretRef(&spec.SecretRef)
		case "disabled":
			spec.Disabled, ok = s.boolean()
			return 1 << 1, ok
		case "allowedCIDRs":
			spec.AllowedCIDRs, ok = s.stringList()
			return 1 << 2, ok
		case "metadata":
			spec.Metadata, ok = s.sharedStringMap()
			return 1 << 3, ok
		}
		return 0, false
	})
}

// secretRef reads a LocalObjectReference.
func (s *jsonScan) secretRef(ref *authv1alpha1.LocalObjectReference) bool {
	more, ok := s.open()
	seen := false
	for ok && more {
		var key []byte
		if key, ok = s.key(); !ok || string(key) != "name" || seen {
			return false
		}
		seen = true
		if ref.Name, ok = s.name(false); !ok {
			return false
		}
		more, ok = s.next()
	}
	return ok
}

// meta reads an object's metadata: name, namespace, labels and annotations only.
func (s *jsonScan) meta(m *metav1.ObjectMeta) bool {
	return s.object(func(key []byte) (bit uint8, ok bool) {
		switch string(key) {
		case "name":
			m.Name, ok = s.name(false)
			return 1 << 0, ok
		case "namespace":
			m.Namespace, ok = s.name(true)
			return 1 << 1, ok
		case "labels":
			m.Labels, ok = s.sharedStringMap()
			return 1 << 2, ok
		case "annotations":
			m.Annotations, ok = s.sharedStringMap()
			return 1 << 3, ok
		}
		return 0, false
	})
}

// object reads a JSON object whose members member reads, given each key: it returns the
// key's bit (each known key has its own, so that a key given twice, a strict error, is
// refused) and false for a key it does not know or a value it cannot read.
func (s *jsonScan) object(member func(key []byte) (bit uint8, ok bool)) bool {
	more, ok := s.open()
	if !ok {
		return false
	}
	var seen uint8
	for more {
		key, ok := s.key()
		if !ok {
			return false
		}
		bit, ok := member(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if more, ok = s.next(); !ok {
			return false
		}
	}
	return true
}

// stringMap reads an object of strings; {} is an empty map, not nil.
func (s *jsonScan) stringMap() (map[string]string, bool) {
	more, ok := s.open()
	if !ok {
		return nil, false
	}
	// The members are collected first, to make the map at its size.
	var buf [8]struct{ k, v string }
	members := buf[:0]
	for more {
		key, ok := s.key()
		if !ok {
			return nil, false
		}
		k := intern(key) // before the value reuses s.buf
		v, ok := s.text()
		if !ok {
			return nil, false
		}
		members = append(members, struct{ k, v string }{k, v})
		if more, ok = s.next(); !ok {
			return nil, false
		}
	}
	m := make(map[string]string, len(members))
	for _, kv := range members {
		m[kv.k] = kv.v
	}
	return m, len(m) == len(members) // else a key came twice: a strict error
}

// bytesMap reads an object of base64 strings, decoded as encoding/json decodes a []byte.
func (s *jsonScan) bytesMap() (map[string][]byte, bool) {
	more, ok := s.open()
	if !ok {
		return nil, false
	}
	var buf [8]struct {
		k string
		v []byte
	}
	members := buf[:0]
	for more {
		key, ok := s.key()
		if !ok {
			return nil, false
		}
		k := intern(key)
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		b := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		n, err := base64.StdEncoding.Decode(b, v)
		if err != nil {
			return nil, false
		}
		members = append(members, struct {
			k string
			v []byte
		}{k, b[:n]})
		if more, ok = s.next(); !ok {
			return nil, false
		}
	}
	m := make(map[string][]byte, len(members))
	for _, kv := range members {
		m[kv.k] = kv.v
	}
	return m, len(m) == len(members)
}

// stringList reads an array of strings; [] is an empty slice, not nil.
func (s *jsonScan) stringList() ([]string, bool) {
	s.space()
	if s.i >= len(s.j) || s.j[s.i] != '[' {
		return nil, false
	}
	s.i++
	s.space()
	if s.i < len(s.j) && s.j[s.i] == ']' {
		s.i++
		return []string{}, true
	}
	var out []string
	for {
		v, ok := s.text()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		s.space()
		if s.i >= len(s.j) {
			return nil, false
		}
		c := s.j[s.i]
		s.i++
		switch c {
		case ',':
		case ']':
			return out, true
		default:
			return nil, false
		}
	}
}

// boolean reads true or false.
func (s *jsonScan) boolean() (bool, bool) {
	s.space()
	rest := s.j[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// open reads the '{' of an object and reports whether a member follows (false for {}).
func (s *jsonScan) open() (more, ok bool) {
	s.space()
	if s.i >= len(s.j) || s.j[s.i] != '{' {
		return false, false
	}
	s.i++
	s.space()
	if s.i < len(s.j) && s.j[s.i] == '}' {
		s.i++
		return false, true
	}
	return true, true
}

// key reads a member's key, unescaped (valid until the next string is read), and its ':'.
func (s *jsonScan) key() ([]byte, bool) {
	k, ok := s.str()
	if !ok {
		return nil, false
	}
	s.space()
	if s.i >= len(s.j) || s.j[s.i] != ':' {
		return nil, false
	}
	s.i++
	return k, true
}

// next reads what follows a member's value: ',' (more is true) or '}' (more is false).
func (s *jsonScan) next() (more, ok bool) {
	s.space()
	if s.i >= len(s.j) {
		return false, false
	}
	c := s.j[s.i]
	s.i++
	switch c {
	case ',':
		return true, true
	case '}':
		return false, true
	}
	return false, false
}

// text reads a string value as a Go string.
func (s *jsonScan) text() (string, bool) {
	v, ok := s.str()
	if !ok {
		return "", false
	}
	return intern(v), true
}

// intern returns the strings every Secret or Credential repeats without allocating them.
func intern(v []byte) string {
	switch string(v) {
	case "v1":
		return "v1"
	case "Secret":
		return "Secret"
	case "Credential":
		return "Credential"
	case "auth.portcullis.dev/v1alpha1":
		return "auth.portcullis.dev/v1alpha1"
	case "auth.portcullis.dev/credential":
		return "auth.portcullis.dev/credential"
	case "appKey": // the keys of a credential's Secret (DESIGN.md)
		return "appKey"
	case "appSecret":
		return "appSecret"
	case "appCodes":
		return "appCodes"
	case "Opaque":
		return "Opaque"
	case "true":
		return "true"
	case "default":
		return "default"
	}
	return string(v)
}

// space skips JSON whitespace.
func (s *jsonScan) space() {
	for s.i < len(s.j) {
		switch s.j[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str reads a string and returns its content, unescaped: a slice of j when it has no
// escapes, else of s.buf (valid until the next string is read). It gives up on control
// characters, invalid UTF-8, unknown escapes and surrogate escapes.
func (s *jsonScan) str() ([]byte, bool) {
	s.space()
	if s.i >= len(s.j) || s.j[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for i := start; i < len(s.j); i++ {
		c := s.j[i]
		if !strSpecial[c] {
			continue
		}
		switch {
		case c == '"':
			v := s.j[start:i]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = i + 1
			return v, true
		case c == '\\':
			return s.unescape(start, i, ascii)
		case c < 0x20:
			return nil, false
		}
		ascii = false
	}
	return nil, false
}

// strSpecial marks the bytes of a string that str must look at: the closing quote, an
// escape, control characters and non-ASCII.
var strSpecial = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// unescape finishes str for a string that opens at j[start-1] and has its first escape at
// j[i].
func (s *jsonScan) unescape(start, i int, ascii bool) ([]byte, bool) {
	b := append(s.buf[:0], s.j[start:i]...)
	for i < len(s.j) {
		c := s.j[i]
		switch {
		case c == '"':
			s.buf = b
			// Runes from \u escapes are whole UTF-8 sequences, so b is valid exactly when
			// every unescaped run of j is.
			if !ascii && !utf8.Valid(b) {
				return nil, false
			}
			s.i = i + 1
			return b, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if i+1 >= len(s.j) {
				return nil, false
			}
			if e, ok := jsonstr.Unescape(s.j[i+1]); ok {
				b = append(b, e)
			} else if s.j[i+1] == 'u' {
				r, ok := jsonstr.Hex4(s.j[i+2:])
				if !ok || r >= 0xd800 && r < 0xe000 {
					return nil, false // a surrogate: left to the strict decoder
				}
				b = utf8.AppendRune(b, r)
				i += 4
			} else {
				return nil, false
			}
			i += 2
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			b = append(b, c)
			i++
		}
	}
	return nil, false
}
