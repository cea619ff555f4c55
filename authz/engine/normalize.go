package engine

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Errors of normalisation. Each becomes a 400 REQUEST_PARAMETERS_FAILURE: an ambiguous
// request is rejected, never guessed.
var (
	errEmptyHost   = errors.New("the request has no host")
	errBadHost     = errors.New("the host is not a valid DNS name or address")
	errBadPath     = errors.New("the path does not start with '/'")
	errFragment    = errors.New("the path holds a fragment ('#')")
	errBackslash   = errors.New("the path holds a backslash")
	errBadEscape   = errors.New("the path holds invalid percent-encoding")
	errEncodedSep  = errors.New("the path holds an encoded '/', '\\' or NUL")
	errBadUTF8     = errors.New("the path is not valid UTF-8")
	errDotSegment  = errors.New("the path holds an empty, '.' or '..' segment")
	errControlChar = errors.New("the path holds a control character")
)

// NormalizeHost lower-cases host and removes a port and a trailing dot. IPv6 literals keep
// their brackets ("[::1]"). Characters outside a DNS name or address, empty labels and
// bracketed text that is not an IPv6 address are rejected.
func NormalizeHost(host string) (string, error) {
	if host == "" {
		return "", errEmptyHost
	}
	if host[0] == '[' { // [v6]:port
		end := strings.IndexByte(host, ']')
		if end < 0 || (end+1 < len(host) && (host[end+1] != ':' || !digits(host[end+2:]))) {
			return "", errBadHost
		}
		if a, err := netip.ParseAddr(host[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return "", errBadHost
		}
		return strings.ToLower(host[:end+1]), nil
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if !digits(host[i+1:]) {
			return "", errBadHost
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", errEmptyHost
	}
	// An empty label (".example.com", "a..b", "a..") is no name: "*.example.com" must not
	// take ".example.com" for one of its hosts.
	if host[0] == '.' || host[len(host)-1] == '.' || strings.Contains(host, "..") {
		return "", errBadHost
	}
	lower := true
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return "", errBadHost
		}
	}
	if !lower {
		host = strings.ToLower(host)
	}
	return host, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unreserved reports the characters that percent-encoding must not hide (RFC 3986 §2.3):
// an encoded one is decoded, so /%61bc and /abc are the same path.
func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const upperHex = "0123456789ABCDEF"

// SplitPath splits a request target ("/a/b?x=1") into its path and raw query.
func SplitPath(target string) (path, query string) {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i], target[i+1:]
	}
	return target, ""
}

// NormalizePath returns the canonical form of a request path (without its query): encoded
// unreserved characters decoded, other escapes upper-cased. It rejects, rather than
// repairs, anything two components could read differently: a fragment, a backslash, an
// encoded '/', '\' or NUL, invalid percent-encoding, invalid UTF-8, control characters, and
// empty, '.' or '..' segments. The result of a path already canonical is the path itself
// (no allocation).
func NormalizePath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", errBadPath
	}
	var b []byte // nil until the path must change
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '#':
			return "", errFragment
		case c == '\\':
			return "", errBackslash
		case c < 0x20 || c == 0x7f:
			return "", errControlChar
		case c == '%':
			if i+2 >= len(p) {
				return "", errBadEscape
			}
			h, ok1 := unhex(p[i+1])
			l, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return "", errBadEscape
			}
			d := h<<4 | l
			switch {
			case d == '/' || d == '\\' || d == 0:
				return "", errEncodedSep
			case d < 0x20 || d == 0x7f:
				return "", errControlChar
			}
			if b == nil {
				b = make([]byte, 0, len(p))
				b = append(b, p[:i]...)
			}
			if unreserved(d) {
				b = append(b, d)
			} else {
				b = append(b, '%', upperHex[d>>4], upperHex[d&15])
			}
			i += 2
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	out := p
	if b != nil {
		out = string(b)
	}
	if !utf8.ValidString(out) || !validEscapedUTF8(out) {
		return "", errBadUTF8
	}
	// Segments: no empty (//), "." or ".." anywhere; a trailing "/" is allowed.
	start := 1
	for i := 1; i <= len(out); i++ {
		if i < len(out) && out[i] != '/' {
			continue
		}
		seg := out[start:i]
		if (seg == "" && i < len(out)) || seg == "." || seg == ".." {
			return "", errDotSegment
		}
		start = i + 1
	}
	return out, nil
}

// validEscapedUTF8 checks that the bytes the remaining escapes stand for are UTF-8 too
// (/%C3%A9 is é; /%C3 alone is not a character).
func validEscapedUTF8(p string) bool {
	if strings.IndexByte(p, '%') < 0 {
		return true
	}
	var buf [256]byte
	b := buf[:0]
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			h, _ := unhex(p[i+1])
			l, _ := unhex(p[i+2])
			b = append(b, h<<4|l)
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return utf8.Valid(b)
}
