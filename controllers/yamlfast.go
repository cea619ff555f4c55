package controllers

import (
	"bytes"
	"math"
	"slices"
	"sync"
	"unicode/utf8"
)

// This file is a fast path for the file source's YAML → JSON conversion. sigs.k8s.io/yaml
// (go.yaml.in/yaml/v2 into interface{}, then encoding/json) costs ~35 µs for a five-line
// document; a large policy directory holds hundreds of thousands of them. fastYAMLToJSON
// understands the plain subset of YAML that manifests are written in and gives up (ok ==
// false) on anything else, so that the caller falls back to sigsyaml.YAMLToJSONStrict. Every
// rule below errs on the side of giving up: falling back is always correct, only slower.
//
// The subset, in the order the parser meets it:
//
//   - The document: printable ASCII plus '\n'; non-ASCII only as printable UTF-8 that YAML
//     does not treat as a line break (so in practice only in comments, as no scalar accepts
//     it). No tab, no '\r', no "---" or "..." line (the caller splits documents). A document
//     of blank and comment lines is null. The root is a block mapping, a block sequence or a
//     single-line flow collection; a scalar root falls back.
//   - Lines: blank lines and full-line comments anywhere; a trailing comment needs a space
//     before its '#'. A block collection's entries start at the same column; a line that
//     matches no open collection's column falls back (it would be a continuation of a plain
//     scalar, or an error).
//   - Block mappings: "key: value", "key:" with a nested block collection on the following,
//     more indented lines (or a sequence at the key's own column, as kubectl writes it), or
//     nothing (null). A value and "key:" may be separated by spaces, a key from its ':' too.
//   - Block sequences: "- value", "- key: value" (a compact mapping continued at the key's
//     column), "- - value" (a compact sequence), "-" with a nested collection or nothing.
//   - Flow collections: "[a, b]", "{a: b, c: [d]}", nested, opened and closed on one line,
//     without a trailing comma, an empty value or a key without a value.
//   - Scalars: plain scalars on one line made of letters, digits, spaces and - _ . / : @ = + ~
//     ( ) (and ',' outside flow collections); double-quoted strings without '\'; single-quoted
//     strings without ''. No character of a scalar needs escaping in JSON (", \, <, >, & and
//     control characters fall back), so scalars are copied to the JSON as they are.
//   - Typing, as go.yaml.in/yaml/v2 resolves plain scalars (YAML 1.1): see resolvePlainScalar.
//     Keys must resolve to strings (sigs.k8s.io/yaml would stringify the others).
//   - Anything else: anchors, aliases, tags, directives, '?' keys, '<<', block scalars,
//     multi-line scalars and flow collections, escapes, floats, timestamps, special integers,
//     duplicate keys (an error in strict mode) and nesting deeper than fastYAMLMaxDepth.

// fastYAMLToJSON converts one YAML document (no "---" separators; the text between them) to JSON,
// appended to dst (a caller converting many documents passes the last result's buffer, [:0]).
// When ok is true, what it appended is byte-for-byte what sigsyaml.YAMLToJSONStrict(doc) returns
// with a nil error. When the document uses anything outside the subset it understands, or anything
// it is not certain about, it returns ok == false and the caller uses sigsyaml.YAMLToJSONStrict.
func fastYAMLToJSON(dst, doc []byte) (out []byte, ok bool) {
	if len(doc) > math.MaxInt32 {
		return nil, false
	}
	p := fastYAMLPool.Get().(*fastYAMLParser)
	defer p.release()
	j, ok := p.convert(doc)
	if !ok {
		return nil, false
	}
	return append(dst, j...), true
}

const (
	// fastYAMLMaxDepth bounds the nesting of collections (and the parser's recursion).
	fastYAMLMaxDepth = 64
	// fastYAMLMaxKey bounds a key's length up to its ':'. YAML gives up on a simple key
	// longer than 1024 characters; this stays well clear of the exact rule.
	fastYAMLMaxKey = 1000
	// fastYAMLMaxInt is the longest run of digits that is an exact int64 whatever it holds.
	fastYAMLMaxInt = 18
)

var fastYAMLPool = sync.Pool{New: func() any { return new(fastYAMLParser) }}

// yamlKind is what a node of the parsed document is.
type yamlKind uint8

const (
	yamlNull yamlKind = iota
	yamlTrue
	yamlFalse
	yamlInt    // a decimal integer, written to the JSON as it is
	yamlString // a string that needs no escaping in JSON
	yamlMap
	yamlSeq
	yamlUnknown // a plain scalar whose type the fast path is not sure about
)

// yamlNode is a node of the parsed document. Text spans are offsets into the document.
type yamlNode struct {
	kind           yamlKind
	keyLo, keyHi   int32 // the key, when the node is a mapping's value
	textLo, textHi int32 // a scalar's text (yamlString, yamlInt)
	kidsLo, kidsN  int32 // a collection's children: parser.kids[kidsLo : kidsLo+kidsN]
}

// yamlLine is a content line: neither blank nor a comment.
type yamlLine struct {
	start, end int // the line's offsets in the document, end excluding the '\n'
	indent     int // leading spaces
}

// fastYAMLParser holds one conversion's state; its slices are reused through fastYAMLPool.
type fastYAMLParser struct {
	doc   []byte
	lines []yamlLine
	li    int // the content line being parsed
	depth int
	nodes []yamlNode
	kids  []int32 // children of collections, each collection's contiguous
	stack []int32 // children of the collections being parsed
	out   []byte
}

func (p *fastYAMLParser) release() {
	p.doc = nil
	// Keep the scratch space of ordinary documents, not of a huge one.
	if cap(p.nodes) > 1<<14 || cap(p.out) > 1<<20 || cap(p.lines) > 1<<14 {
		return
	}
	fastYAMLPool.Put(p)
}

func (p *fastYAMLParser) convert(doc []byte) ([]byte, bool) {
	p.doc, p.li, p.depth = doc, 0, 0
	p.lines, p.nodes, p.kids, p.stack, p.out = p.lines[:0], p.nodes[:0], p.kids[:0], p.stack[:0], p.out[:0]
	if !p.splitLines() {
		return nil, false
	}
	if len(p.lines) == 0 {
		return []byte("null"), true
	}
	root, ok := p.parseRoot()
	if !ok || !p.writeNode(root) {
		return nil, false
	}
	return p.out, true // the caller copies it before p goes back to the pool
}

// splitLines checks every byte of the document and records its content lines.
func (p *fastYAMLParser) splitLines() bool {
	doc := p.doc
	for start := 0; start < len(doc); {
		end := len(doc)
		if i := bytes.IndexByte(doc[start:], '\n'); i >= 0 {
			end = start + i
		}
		line := doc[start:end]
		for i := 0; i < len(line); {
			c := line[i]
			if c >= 0x20 && c < 0x7f {
				i++
				continue
			}
			if c < utf8.RuneSelf {
				return false // tab, '\r', another control character, DEL
			}
			r, size := utf8.DecodeRune(line[i:])
			if !yamlPrintableRune(r, size) {
				return false
			}
			i += size
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		switch {
		case indent == len(line), line[indent] == '#':
			// A blank line or a comment.
		case indent == 0 && (bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))):
			return false // a document marker
		default:
			p.lines = append(p.lines, yamlLine{start: start, end: end, indent: indent})
		}
		start = end + 1
	}
	return true
}

// yamlPrintableRune reports whether a non-ASCII rune may appear in a comment: valid UTF-8
// that YAML accepts as printable and that is not one of YAML 1.1's line breaks (NEL, LS, PS)
// or a byte order mark.
func yamlPrintableRune(r rune, size int) bool {
	if r == utf8.RuneError && size <= 1 {
		return false
	}
	switch {
	case r == 0x2028, r == 0x2029, r == 0xFEFF:
		return false
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// parseRoot parses the document's root node: a block collection or a flow collection.
func (p *fastYAMLParser) parseRoot() (int32, bool) {
	l := p.lines[0]
	pos := l.start + l.indent
	var root int32
	var ok bool
	if c := p.doc[pos]; c == '[' || c == '{' {
		var after int
		root, after, ok = p.parseFlow(pos, l.end)
		ok = ok && p.restIsComment(after, l.end)
		p.li++
	} else {
		root, ok = p.parseBlockNode(l.indent)
	}
	return root, ok && p.li == len(p.lines)
}

// parseBlockNode parses the block collection that starts the current line at column indent.
func (p *fastYAMLParser) parseBlockNode(indent int) (int32, bool) {
	l := p.lines[p.li]
	pos := l.start + indent
	if p.isSeqEntry(pos, l.end) {
		return p.parseBlockSeq(pos, indent, false)
	}
	return p.parseBlockMap(pos, indent)
}

// isSeqEntry reports whether a block sequence entry ("- " or a lone "-") starts at pos.
func (p *fastYAMLParser) isSeqEntry(pos, end int) bool {
	return pos < end && p.doc[pos] == '-' && (pos+1 == end || p.doc[pos+1] == ' ')
}

// parseBlockMap parses a block mapping whose first key is at pos, on the current line, and
// whose keys are all at column indent.
func (p *fastYAMLParser) parseBlockMap(pos, indent int) (int32, bool) {
	self, base, ok := p.open(yamlMap)
	if !ok {
		return 0, false
	}
	for {
		l := p.lines[p.li]
		status, keyLo, keyHi, after := p.scanKey(pos, l.end)
		if status != keyFound {
			return 0, false
		}
		v, ok := p.parseMapValue(after, l.end, indent)
		if !ok {
			return 0, false
		}
		p.nodes[v].keyLo, p.nodes[v].keyHi = int32(keyLo), int32(keyHi)
		p.stack = append(p.stack, v)
		if p.li == len(p.lines) {
			break
		}
		next := p.lines[p.li]
		if next.indent < indent {
			break // the mapping ends; the caller checks the line
		}
		if next.indent > indent {
			return 0, false // a continuation line or an indentation error
		}
		pos = next.start + indent
	}
	return p.close(self, base), true
}

// parseMapValue parses the value of a block mapping's entry, which follows the key's ':' at
// pos on the current line; indent is the mapping's column. It leaves p.li at the next line
// after the value.
func (p *fastYAMLParser) parseMapValue(pos, end, indent int) (int32, bool) {
	pos = p.skipSpaces(pos, end)
	if pos < end && p.doc[pos] != '#' {
		return p.parseInlineValue(pos, end)
	}
	p.li++
	if p.li < len(p.lines) {
		next := p.lines[p.li]
		if next.indent > indent {
			return p.parseBlockNode(next.indent)
		}
		if next.indent == indent && p.isSeqEntry(next.start+indent, next.end) {
			return p.parseBlockSeq(next.start+indent, indent, true)
		}
	}
	return p.node(yamlNull, 0, 0), true
}

// parseBlockSeq parses a block sequence whose first entry's '-' is at pos on the current line
// and whose entries are all at column indent. An indentless sequence (a mapping's value at
// the mapping's own column) ends at the first line of its column that is not an entry.
func (p *fastYAMLParser) parseBlockSeq(pos, indent int, indentless bool) (int32, bool) {
	self, base, ok := p.open(yamlSeq)
	if !ok {
		return 0, false
	}
	for {
		l := p.lines[p.li]
		q := p.skipSpaces(pos+1, l.end)
		var v int32
		switch {
		case q == l.end || p.doc[q] == '#':
			// The entry's node is on the following lines, or it is null.
			p.li++
			if p.li < len(p.lines) && p.lines[p.li].indent > indent {
				v, ok = p.parseBlockNode(p.lines[p.li].indent)
			} else {
				v, ok = p.node(yamlNull, 0, 0), true
			}
		case p.isSeqEntry(q, l.end):
			v, ok = p.parseBlockSeq(q, q-l.start, false)
		default:
			switch status, _, _, _ := p.scanKey(q, l.end); status {
			case keyFound:
				v, ok = p.parseBlockMap(q, q-l.start)
			case keyNone:
				v, ok = p.parseInlineValue(q, l.end)
			default:
				ok = false
			}
		}
		if !ok {
			return 0, false
		}
		p.stack = append(p.stack, v)
		if p.li == len(p.lines) {
			break
		}
		next := p.lines[p.li]
		if next.indent < indent {
			break
		}
		if next.indent > indent {
			return 0, false
		}
		pos = next.start + indent
		if !p.isSeqEntry(pos, next.end) {
			if indentless {
				break // the parent mapping's next key
			}
			return 0, false
		}
	}
	return p.close(self, base), true
}

// parseInlineValue parses a node that takes the rest of the current line from pos: a flow
// collection, a quoted scalar or a plain scalar, then an optional comment. It moves p.li to
// the next line.
func (p *fastYAMLParser) parseInlineValue(pos, end int) (int32, bool) {
	var v int32
	var after int
	var ok bool
	switch p.doc[pos] {
	case '[', '{':
		v, after, ok = p.parseFlow(pos, end)
	case '"', '\'':
		var lo, hi int
		lo, hi, after, ok = p.scanQuoted(pos, end)
		v = p.node(yamlString, lo, hi)
	default:
		hi, _, why := p.scanPlain(pos, end, false)
		if why != stopEOL && why != stopComment {
			return 0, false // "a: b: c", a bad character
		}
		kind := resolvePlainScalar(p.doc[pos:hi])
		v, after, ok = p.node(kind, pos, hi), hi, kind != yamlUnknown
	}
	if !ok || !p.restIsComment(after, end) {
		return 0, false
	}
	p.li++
	return v, true
}

// restIsComment reports whether the line from pos to end is blank or a comment that follows
// a space.
func (p *fastYAMLParser) restIsComment(pos, end int) bool {
	q := p.skipSpaces(pos, end)
	return q == end || (p.doc[q] == '#' && q > pos)
}

// parseFlow parses a flow collection ("[...]" or "{...}") that starts at pos and closes
// before end, the end of its line. It returns the node and the offset after the closing
// bracket.
func (p *fastYAMLParser) parseFlow(pos, end int) (int32, int, bool) {
	if p.doc[pos] == '[' {
		return p.parseFlowSeq(pos, end)
	}
	return p.parseFlowMap(pos, end)
}

// parseFlowSeq parses "[a, b, ...]" from its '[' at pos.
func (p *fastYAMLParser) parseFlowSeq(pos, end int) (int32, int, bool) {
	self, base, ok := p.open(yamlSeq)
	if !ok {
		return 0, 0, false
	}
	i := p.skipSpaces(pos+1, end)
	if i < end && p.doc[i] == ']' {
		return p.close(self, base), i + 1, true
	}
	for {
		var v int32
		if v, i, ok = p.parseFlowItem(i, end); !ok {
			return 0, 0, false
		}
		p.stack = append(p.stack, v)
		if i = p.skipSpaces(i, end); i == end {
			return 0, 0, false // not closed on this line
		}
		if p.doc[i] == ']' {
			return p.close(self, base), i + 1, true
		}
		if p.doc[i] != ',' {
			return 0, 0, false
		}
		if i = p.skipSpaces(i+1, end); i == end || p.doc[i] == ']' {
			return 0, 0, false // a trailing comma, or not closed on this line
		}
	}
}

// parseFlowMap parses "{k: v, ...}" from its '{' at pos. Every key has a ": " and a value.
func (p *fastYAMLParser) parseFlowMap(pos, end int) (int32, int, bool) {
	self, base, ok := p.open(yamlMap)
	if !ok {
		return 0, 0, false
	}
	i := p.skipSpaces(pos+1, end)
	if i < end && p.doc[i] == '}' {
		return p.close(self, base), i + 1, true
	}
	for {
		keyLo, keyHi, colon, ok := p.scanFlowKey(i, end)
		if !ok {
			return 0, 0, false
		}
		if i = p.skipSpaces(colon+1, end); i == end || p.doc[i] == ',' || p.doc[i] == '}' {
			return 0, 0, false // an empty value, or not closed on this line
		}
		var v int32
		if v, i, ok = p.parseFlowItem(i, end); !ok {
			return 0, 0, false
		}
		p.nodes[v].keyLo, p.nodes[v].keyHi = int32(keyLo), int32(keyHi)
		p.stack = append(p.stack, v)
		if i = p.skipSpaces(i, end); i == end {
			return 0, 0, false
		}
		if p.doc[i] == '}' {
			return p.close(self, base), i + 1, true
		}
		if p.doc[i] != ',' {
			return 0, 0, false
		}
		if i = p.skipSpaces(i+1, end); i == end || p.doc[i] == '}' {
			return 0, 0, false // a trailing comma, or not closed on this line
		}
	}
}

// scanFlowKey scans a flow mapping's key at pos: a quoted scalar or a plain scalar that is a
// string, then ':' and a space. It returns the key's text and the offset of the ':'.
func (p *fastYAMLParser) scanFlowKey(pos, end int) (lo, hi, colon int, ok bool) {
	if pos == end {
		return 0, 0, 0, false // not closed on this line
	}
	if c := p.doc[pos]; c == '"' || c == '\'' {
		if lo, hi, colon, ok = p.scanQuoted(pos, end); !ok || colon == end || p.doc[colon] != ':' {
			return 0, 0, 0, false
		}
	} else {
		var why plainStop
		lo = pos
		if hi, colon, why = p.scanPlain(pos, end, true); why != stopColon || resolvePlainScalar(p.doc[lo:hi]) != yamlString {
			return 0, 0, 0, false
		}
	}
	// The value indicator needs a space after it (scanPlain also stops at a ':' ending the line).
	ok = colon+1 < end && p.doc[colon+1] == ' ' && colon-pos < fastYAMLMaxKey
	return lo, hi, colon, ok
}

// parseFlowItem parses a node inside a flow collection at pos: a flow collection, a quoted
// scalar or a plain scalar ending at ',', ']' or '}'. It returns the offset after the node.
func (p *fastYAMLParser) parseFlowItem(pos, end int) (int32, int, bool) {
	if pos == end {
		return 0, 0, false // not closed on this line
	}
	switch p.doc[pos] {
	case '[', '{':
		return p.parseFlow(pos, end)
	case '"', '\'':
		lo, hi, after, ok := p.scanQuoted(pos, end)
		return p.node(yamlString, lo, hi), after, ok
	}
	hi, stop, why := p.scanPlain(pos, end, true)
	if why != stopFlow {
		return 0, 0, false // "[a: b]", a comment, the end of the line, a bad character
	}
	kind := resolvePlainScalar(p.doc[pos:hi])
	return p.node(kind, pos, hi), stop, kind != yamlUnknown
}

// keyStatus is what scanKey found.
type keyStatus uint8

const (
	keyNone  keyStatus = iota // not a key: a scalar or a flow collection (or an error found later)
	keyFound                  // a key that is a string, then ':' and a space or the line's end
	keyBad                    // something the fast path does not handle
)

// scanKey looks for a block mapping's key at pos: a quoted scalar followed by ':', or a plain
// scalar followed (perhaps after spaces) by ':', the ':' followed by a space or the line's
// end. It returns the key's text and the offset after the ':'.
func (p *fastYAMLParser) scanKey(pos, end int) (status keyStatus, lo, hi, after int) {
	var colon int
	switch p.doc[pos] {
	case '[', '{':
		return keyNone, 0, 0, 0
	case '"', '\'':
		var ok bool
		if lo, hi, colon, ok = p.scanQuoted(pos, end); !ok {
			return keyBad, 0, 0, 0
		}
		if colon == end || p.doc[colon] != ':' || (colon+1 < end && p.doc[colon+1] != ' ') {
			return keyNone, 0, 0, 0 // a quoted value (or, like '"a" : b', a fallback later)
		}
	default:
		var why plainStop
		lo = pos
		hi, colon, why = p.scanPlain(pos, end, false)
		switch why {
		case stopEOL, stopComment:
			return keyNone, 0, 0, 0
		case stopColon:
			if resolvePlainScalar(p.doc[lo:hi]) != yamlString {
				return keyBad, 0, 0, 0 // sigs.k8s.io/yaml turns a bool or int key into a string
			}
		default:
			return keyBad, 0, 0, 0
		}
	}
	if colon-pos >= fastYAMLMaxKey {
		return keyBad, 0, 0, 0
	}
	return keyFound, lo, hi, colon + 1
}

// plainStop is why scanPlain stopped.
type plainStop uint8

const (
	stopBad     plainStop = iota // a character the fast path does not accept in a plain scalar
	stopEOL                      // the end of the line
	stopComment                  // " #"
	stopColon                    // ':' followed by a space or the end of the line
	stopFlow                     // ',', ']' or '}' inside a flow collection
)

// scanPlain scans a plain scalar from pos to at most end, inside a flow collection or not.
// It returns the end of the scalar's text (trailing spaces excluded), the offset where it
// stopped and why. Inside a flow collection a ':' that is not followed by a space falls
// back: YAML versions and parsers disagree about it.
func (p *fastYAMLParser) scanPlain(pos, end int, flow bool) (hi, stop int, why plainStop) {
	doc := p.doc
	c := doc[pos]
	switch {
	case c == '-':
		// "-x" is a plain scalar, "- x" and a lone "-" are sequence entries.
		if pos+1 == end || !plainBody[doc[pos+1]] || doc[pos+1] == ' ' || (flow && doc[pos+1] == ',') {
			return 0, pos, stopBad
		}
	case !plainFirst[c]:
		return 0, pos, stopBad
	}
	hi = pos
	for i := pos; i < end; i++ {
		switch c := doc[i]; {
		case c == ' ':
			continue
		case c == '#' && doc[i-1] == ' ':
			return hi, i, stopComment
		case c == ':':
			if i+1 == end || doc[i+1] == ' ' {
				return hi, i, stopColon
			}
			if flow {
				return 0, i, stopBad
			}
		case flow && (c == ',' || c == ']' || c == '}'):
			return hi, i, stopFlow
		case !plainBody[c]:
			return 0, i, stopBad
		}
		hi = i + 1
	}
	return hi, end, stopEOL
}

// scanQuoted scans a single-line quoted scalar from its opening quote at pos. It returns the
// text between the quotes and the offset after the closing quote. Escapes (a backslash in a
// double-quoted scalar, a doubled quote in a single-quoted one) and characters JSON escapes
// fall back.
func (p *fastYAMLParser) scanQuoted(pos, end int) (lo, hi, after int, ok bool) {
	doc := p.doc
	quote := doc[pos]
	for i := pos + 1; i < end; i++ {
		c := doc[i]
		if c == quote {
			if quote == '\'' && i+1 < end && doc[i+1] == '\'' {
				return 0, 0, 0, false
			}
			return pos + 1, i, i + 1, true
		}
		if !quotedSafe[c] {
			return 0, 0, 0, false
		}
	}
	return 0, 0, 0, false // not closed on this line
}

// plainFirst, plainBody and quotedSafe are the characters the fast path accepts as the first
// character of a plain scalar, in the rest of one, and inside quotes. None needs escaping in
// JSON (encoding/json escapes ", \, <, >, & and control characters).
var plainFirst, plainBody, quotedSafe [256]bool

func init() {
	for c := 'a'; c <= 'z'; c++ {
		plainFirst[c], plainFirst[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		plainFirst[c] = true
	}
	for _, c := range "/.+~" {
		plainFirst[c] = true
	}
	plainBody = plainFirst
	for _, c := range " -_:@=()," {
		plainBody[c] = true
	}
	for c := 0x20; c < 0x7f; c++ {
		quotedSafe[c] = true
	}
	for _, c := range "\"\\<>&" {
		quotedSafe[c] = false
	}
}

// resolvePlainScalar returns the type go.yaml.in/yaml/v2's resolver (YAML 1.1) gives a plain
// scalar, or yamlUnknown when the fast path is not certain or would have to convert it:
//
//   - Starting with a letter: one of YAML 1.1's exact bool and null words (y, yes, on, true,
//     n, no, off, false, null in their lower, Title and UPPER forms) is a bool or null; a
//     different capitalisation of one of them ("yEs") falls back; anything else is a string.
//   - Starting with '/': a string. "~" alone is null.
//   - Starting with a digit, '-', '+' or '.': a decimal integer without a leading zero that
//     fits an int64 ("0", "42", "-7") is an integer. Otherwise, when it has a character no
//     number can have (e.g. "30s", "1.2.3.4/8") and does not start like a timestamp
//     ("2030-"), it is a string. Everything else falls back: floats, octal, hexadecimal,
//     binary, underscores, ".inf", timestamps, and ':' (YAML 1.1's base 60 numbers, which
//     yaml.v2 does not implement but other parsers do).
func resolvePlainScalar(s []byte) yamlKind {
	c := s[0]
	switch {
	case c|0x20 >= 'a' && c|0x20 <= 'z':
		switch string(s) {
		case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
			return yamlTrue
		case "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
			return yamlFalse
		case "null", "Null", "NULL":
			return yamlNull
		}
		if len(s) <= len("false") && isYAMLWordFold(s) {
			return yamlUnknown
		}
		return yamlString
	case c == '/':
		return yamlString
	case c == '~':
		if len(s) == 1 {
			return yamlNull
		}
		return yamlUnknown
	case c >= '0' && c <= '9', c == '-', c == '+', c == '.':
		if isDecimalInt(s) {
			return yamlInt
		}
		if len(s) > 4 && s[4] == '-' && isDigits(s[:4]) {
			return yamlUnknown // perhaps a timestamp
		}
		for _, b := range s {
			if b == ':' {
				return yamlUnknown
			}
		}
		for _, b := range s {
			if !numberish[b] {
				return yamlString
			}
		}
	}
	return yamlUnknown
}

// numberish holds every character strconv.ParseInt, ParseUint and ParseFloat or yaml.v2's
// special floats (".inf", ".nan") may accept: a plain scalar with another character is not a
// number.
var numberish [256]bool

func init() {
	for _, c := range "0123456789abcdefABCDEFxXoObBpPiInN_.+-" {
		numberish[c] = true
	}
}

// isYAMLWordFold reports whether s is a bool or null word of YAML 1.1 in any capitalisation.
func isYAMLWordFold(s []byte) bool {
	for _, w := range []string{"y", "yes", "true", "on", "n", "no", "false", "off", "null"} {
		if len(w) == len(s) && bytes.EqualFold(s, []byte(w)) {
			return true
		}
	}
	return false
}

// isDecimalInt reports whether s is "0" or an optionally negative decimal integer without a
// leading zero and short enough to be an exact int64: its JSON is its text ("-0" is not).
func isDecimalInt(s []byte) bool {
	negative := s[0] == '-'
	if negative {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > fastYAMLMaxInt || !isDigits(s) {
		return false
	}
	return s[0] != '0' || (len(s) == 1 && !negative) // "-0" is 0 in JSON
}

func isDigits(s []byte) bool {
	for _, b := range s {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// open starts a collection node; close gives it the children pushed since.
func (p *fastYAMLParser) open(kind yamlKind) (self int32, base int, ok bool) {
	if p.depth++; p.depth > fastYAMLMaxDepth {
		return 0, 0, false
	}
	return p.node(kind, 0, 0), len(p.stack), true
}

func (p *fastYAMLParser) close(self int32, base int) int32 {
	p.depth--
	n := &p.nodes[self]
	n.kidsLo, n.kidsN = int32(len(p.kids)), int32(len(p.stack)-base)
	p.kids = append(p.kids, p.stack[base:]...)
	p.stack = p.stack[:base]
	return self
}

// node adds a node (a scalar's text is doc[lo:hi]).
func (p *fastYAMLParser) node(kind yamlKind, lo, hi int) int32 {
	p.nodes = append(p.nodes, yamlNode{kind: kind, textLo: int32(lo), textHi: int32(hi)})
	return int32(len(p.nodes) - 1)
}

// writeNode appends a node's JSON to p.out as encoding/json writes it: compact, a mapping's
// keys sorted bytewise. It reports false on a duplicate key (an error in strict mode).
func (p *fastYAMLParser) writeNode(i int32) bool {
	n := p.nodes[i]
	switch n.kind {
	case yamlNull:
		p.out = append(p.out, "null"...)
	case yamlTrue:
		p.out = append(p.out, "true"...)
	case yamlFalse:
		p.out = append(p.out, "false"...)
	case yamlInt:
		p.out = append(p.out, p.doc[n.textLo:n.textHi]...)
	case yamlString:
		p.out = append(p.out, '"')
		p.out = append(p.out, p.doc[n.textLo:n.textHi]...)
		p.out = append(p.out, '"')
	case yamlSeq:
		p.out = append(p.out, '[')
		for k, kid := range p.kids[n.kidsLo : n.kidsLo+n.kidsN] {
			if k > 0 {
				p.out = append(p.out, ',')
			}
			if !p.writeNode(kid) {
				return false
			}
		}
		p.out = append(p.out, ']')
	case yamlMap:
		kids := p.kids[n.kidsLo : n.kidsLo+n.kidsN]
		p.sortByKey(kids)
		p.out = append(p.out, '{')
		for k, kid := range kids {
			key := p.key(kid)
			if k > 0 {
				if bytes.Equal(p.key(kids[k-1]), key) {
					return false
				}
				p.out = append(p.out, ',')
			}
			p.out = append(p.out, '"')
			p.out = append(p.out, key...)
			p.out = append(p.out, '"', ':')
			if !p.writeNode(kid) {
				return false
			}
		}
		p.out = append(p.out, '}')
	default:
		return false
	}
	return true
}

func (p *fastYAMLParser) key(i int32) []byte {
	n := &p.nodes[i]
	return p.doc[n.keyLo:n.keyHi]
}

// sortByKey sorts a mapping's entries by key, bytewise as encoding/json sorts a map's keys.
func (p *fastYAMLParser) sortByKey(kids []int32) {
	if len(kids) > 12 {
		slices.SortFunc(kids, func(a, b int32) int { return bytes.Compare(p.key(a), p.key(b)) })
		return
	}
	for i := 1; i < len(kids); i++ { // insertion sort: manifests' mappings are small
		for j := i; j > 0 && bytes.Compare(p.key(kids[j-1]), p.key(kids[j])) > 0; j-- {
			kids[j-1], kids[j] = kids[j], kids[j-1]
		}
	}
}

// skipSpaces returns the first offset from pos before end that is not a space.
func (p *fastYAMLParser) skipSpaces(pos, end int) int {
	for pos < end && p.doc[pos] == ' ' {
		pos++
	}
	return pos
}
