package signing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
)

// Canonicalisation, as the APIG SDKs do it (Go: apig signer / golangsdk; Java:
// com.cloud.sdk.auth.signer.Signer):
//
//   - URI: the path is percent-decoded, then every byte but '/' and the RFC 3986 unreserved
//     characters A-Z a-z 0-9 - _ . ~ is percent-encoded with upper-case hex, and a '/' is
//     appended unless the result already ends with one. A '/' that was sent as %2F therefore
//     becomes a separator, as in both SDKs (Go reads url.URL.Path, Java URI.getPath; both
//     decode before splitting on '/'). The decision engine rejects such paths anyway.
//   - Query: split on '&' (empty parts skipped), each part into key and value at the first
//     '=' (no '=': empty value), both decoded as application/x-www-form-urlencoded ('+' is a
//     space, as Go's url.ParseQuery and Java's URLDecoder read it), sorted by key then value,
//     and written back as escape(key)=escape(value) joined by '&'.
//   - Percent signs not followed by two hex digits are kept as literal '%' characters (where
//     the Go SDK would drop the parameter) so that no part of the request escapes the
//     signature.

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is left as is by escaping (RFC 3986 unreserved).
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func appendEscapedByte(dst []byte, c byte) []byte {
	if unreserved(c) {
		return append(dst, c)
	}
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

func appendEscaped(dst, s []byte) []byte {
	for _, c := range s {
		dst = appendEscapedByte(dst, c)
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// percentAt decodes s[i:i+3] if it is a valid %XX escape.
func percentAt(s string, i int) (byte, bool) {
	if s[i] != '%' || i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

// appendCanonicalURI appends the canonical form of the raw (percent-encoded) path.
func appendCanonicalURI(dst []byte, path string) []byte {
	start := len(dst)
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' {
			if d, ok := percentAt(path, i); ok {
				c = d
				i += 2
			}
		}
		if c == '/' {
			dst = append(dst, '/')
		} else {
			dst = appendEscapedByte(dst, c)
		}
	}
	if len(dst) == start || dst[len(dst)-1] != '/' {
		dst = append(dst, '/')
	}
	return dst
}

// qpair locates one decoded query parameter in scratch.query.
type qpair struct{ k0, k1, v0, v1 int }

// formDecodeInPlace decodes b ('+' is a space, %XX a byte, a stray '%' itself) over itself
// and returns the decoded length; decoding never makes a string longer.
func formDecodeInPlace(b []byte) int {
	w := 0
	for r := 0; r < len(b); w++ {
		c := b[r]
		switch {
		case c == '+':
			c = ' '
			r++
		case c == '%' && r+2 < len(b):
			hi, ok1 := unhex(b[r+1])
			lo, ok2 := unhex(b[r+2])
			if ok1 && ok2 {
				c = hi<<4 | lo
				r += 3
			} else {
				r++
			}
		default:
			r++
		}
		b[w] = c
	}
	return w
}

// parseQuery decodes the raw query into sc.query and lists its parameters in sc.pairs,
// sorted by (decoded) key then value.
func (sc *scratch) parseQuery(q string) {
	sc.query = append(sc.query[:0], q...)
	b := sc.query
	sc.pairs = sc.pairs[:0]
	for i := 0; i < len(b); {
		end := bytes.IndexByte(b[i:], '&')
		if end < 0 {
			end = len(b)
		} else {
			end += i
		}
		if end > i {
			k0, k1, v0, v1 := i, end, end, end
			if eq := bytes.IndexByte(b[i:end], '='); eq >= 0 {
				k1, v0 = i+eq, i+eq+1
			}
			k1 = k0 + formDecodeInPlace(b[k0:k1])
			v1 = v0 + formDecodeInPlace(b[v0:v1])
			sc.pairs = append(sc.pairs, qpair{k0, k1, v0, v1})
		}
		i = end + 1
	}
	if len(sc.pairs) > 1 {
		slices.SortFunc(sc.pairs, func(x, y qpair) int {
			if c := bytes.Compare(b[x.k0:x.k1], b[y.k0:y.k1]); c != 0 {
				return c
			}
			return bytes.Compare(b[x.v0:x.v1], b[y.v0:y.v1])
		})
	}
}

// escapedOrderDiffers reports whether sorting the parameters by their escaped forms (as the
// Java SDK does) gives another order than sorting them decoded (as the Go, Python and
// JavaScript SDKs do). The two differ only when a key or a value holds a byte that escaping
// moves across an unreserved character, such as non-ASCII text.
func (sc *scratch) escapedOrderDiffers() bool {
	b := sc.query
	for i := 1; i < len(sc.pairs); i++ {
		x, y := sc.pairs[i-1], sc.pairs[i]
		c := cmpEscaped(b[x.k0:x.k1], b[y.k0:y.k1])
		if c == 0 {
			c = cmpEscaped(b[x.v0:x.v1], b[y.v0:y.v1])
		}
		if c > 0 {
			return true
		}
	}
	return false
}

func (sc *scratch) sortEscaped() {
	b := sc.query
	slices.SortFunc(sc.pairs, func(x, y qpair) int {
		if c := cmpEscaped(b[x.k0:x.k1], b[y.k0:y.k1]); c != 0 {
			return c
		}
		return cmpEscaped(b[x.v0:x.v1], b[y.v0:y.v1])
	})
}

// cmpEscaped compares the escaped forms of a and b without building them.
func cmpEscaped(a, b []byte) int {
	var ea, eb [3]byte
	var na, nb, ia, ib int // escaped bytes buffered, and read so far
	i, j := 0, 0
	for {
		if ia == na {
			if i == len(a) {
				break
			}
			na, ia = escapeInto(&ea, a[i]), 0
			i++
		}
		if ib == nb {
			if j == len(b) {
				return 1
			}
			nb, ib = escapeInto(&eb, b[j]), 0
			j++
		}
		if ea[ia] != eb[ib] {
			if ea[ia] < eb[ib] {
				return -1
			}
			return 1
		}
		ia++
		ib++
	}
	if ib < nb || j < len(b) {
		return -1
	}
	return 0
}

func escapeInto(e *[3]byte, c byte) int {
	if unreserved(c) {
		e[0] = c
		return 1
	}
	e[0], e[1], e[2] = '%', upperHex[c>>4], upperHex[c&15]
	return 3
}

func (sc *scratch) appendQuery(dst []byte) []byte {
	b := sc.query
	for i, p := range sc.pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = appendEscaped(dst, b[p.k0:p.k1])
		dst = append(dst, '=')
		dst = appendEscaped(dst, b[p.v0:p.v1])
	}
	return dst
}

// headerValue returns the value of a signed header; "host" falls back to req.Host when the
// caller has no host header (HTTP/2 carries it as :authority).
func headerValue(req *Request, name string) (string, bool) {
	if req.Header != nil {
		if v, ok := req.Header(name); ok {
			return v, true
		}
	}
	if name == headerHost && req.Host != "" {
		return req.Host, true
	}
	return "", false
}

// appendCanonicalRequest appends the canonical request; the query must have been parsed
// into sc. A signed header the request lacks is written with an empty value.
func (sc *scratch) appendCanonicalRequest(dst []byte, req *Request, signedHeaders []string, bodyHash []byte) []byte {
	dst = append(dst, req.Method...)
	dst = append(dst, '\n')
	dst = appendCanonicalURI(dst, req.Path)
	dst = append(dst, '\n')
	dst = sc.appendQuery(dst)
	dst = append(dst, '\n')
	for _, h := range signedHeaders {
		v, _ := headerValue(req, h)
		dst = append(dst, h...)
		dst = append(dst, ':')
		dst = append(dst, strings.TrimSpace(v)...)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	for i, h := range signedHeaders {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, h...)
	}
	dst = append(dst, '\n')
	return append(dst, bodyHash...)
}

// appendStringToSign appends the string to sign for a canonical request.
func appendStringToSign(dst []byte, date string, canonicalRequest []byte) []byte {
	sum := sha256.Sum256(canonicalRequest)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	dst = append(dst, Algorithm...)
	dst = append(dst, '\n')
	dst = append(dst, date...)
	dst = append(dst, '\n')
	return append(dst, h[:]...)
}

// CanonicalRequest returns the canonical request for req, signing signedHeaders (in the
// order given; Verify and Sign use them sorted) with bodyHash (hex SHA-256 of the body, or
// UnsignedPayload). It is what Verify hashes, for tests and `portcullis check`.
func CanonicalRequest(req Request, signedHeaders []string, bodyHash string) string {
	sc := getScratch()
	defer putScratch(sc)
	sc.parseQuery(req.Query)
	sc.canon = sc.appendCanonicalRequest(sc.canon[:0], &req, signedHeaders, []byte(bodyHash))
	return string(sc.canon)
}

// StringToSign returns "SDK-HMAC-SHA256\n" + date + "\n" + hex(sha256(canonicalRequest)).
func StringToSign(date string, canonicalRequest string) string {
	return string(appendStringToSign(nil, date, []byte(canonicalRequest)))
}

// scratch holds the buffers of one canonicalisation; pooled, so Verify allocates nothing.
type scratch struct {
	canon []byte  // canonical request
	query []byte  // decoded query parameters
	pairs []qpair // their places in query
	mac   []byte  // HMAC input blocks
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		canon: make([]byte, 0, 1024),
		query: make([]byte, 0, 256),
		pairs: make([]qpair, 0, 16),
		mac:   make([]byte, 0, 256),
	}
}}

// maxPooled bounds what a pooled buffer may keep, so that one huge request does not pin
// its buffers for ever.
const maxPooled = 64 << 10

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.canon) > maxPooled || cap(sc.query) > maxPooled || cap(sc.pairs) > maxPooled/32 || cap(sc.mac) > maxPooled {
		return
	}
	scratchPool.Put(sc)
}
