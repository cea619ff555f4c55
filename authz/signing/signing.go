// Package signing implements SDK-HMAC-SHA256 request signatures, byte-compatible with the
// app authentication of Huawei Cloud API Gateway (APIG) and the request signers of its SDKs:
// parsing the Authorization header, canonicalising a request, signing it and verifying a
// signature.
//
// Verify is on the hot path of every signed request: it allocates nothing when the signature
// is good, compares signatures in constant time, and its errors are safe to show to a client
// (they never carry the secret or the expected signature).
package signing

import (
	"errors"
	"fmt"
	"strings"
)

// Algorithm is the signature scheme, the first word of the Authorization header.
const Algorithm = "SDK-HMAC-SHA256"

// DateFormat is the layout of the X-Sdk-Date header (UTC).
const DateFormat = "20060102T150405Z"

// UnsignedPayload, as the value of X-Sdk-Content-Sha256, asks for the body to be left out of
// the signature; it then stands in for the body hash in the canonical request.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Header names, lower-case.
const (
	headerDate          = "x-sdk-date"
	headerContentSHA256 = "x-sdk-content-sha256"
	headerHost          = "host"
)

const (
	maxAppKeyLen        = 256 // as authz/compile accepts for a Credential's appKey
	maxSignedHeaders    = 128
	maxSignedHeadersLen = 4096
	signatureHexLen     = 64
)

// Errors returned by ParseAuthorization, Verify and Sign; compare with errors.Is. The
// messages of the errors returned (which may add detail to these) are safe to show to a
// client.
var (
	// ErrNotSigned: the Authorization value is not of the SDK-HMAC-SHA256 scheme.
	ErrNotSigned = errors.New("not an " + Algorithm + " authorization")
	// ErrMalformed: the Authorization value (or an argument of Sign) is not well formed.
	ErrMalformed = errors.New("malformed " + Algorithm + " authorization")
	// ErrMissingDate: X-Sdk-Date is absent or not of the form YYYYMMDDTHHMMSSZ.
	ErrMissingDate = errors.New("missing or invalid X-Sdk-Date header (want " + DateFormat + ", UTC)")
	// ErrClockSkew: X-Sdk-Date is too far from the verifier's clock.
	ErrClockSkew = errors.New("X-Sdk-Date is too far from the current time")
	// ErrMissingSignedHeader: a header listed in SignedHeaders is not in the request.
	ErrMissingSignedHeader = errors.New("a signed header is missing from the request")
	// ErrHostMismatch: "host" is signed but differs from the request's authority.
	ErrHostMismatch = errors.New("the signed host header differs from the request's authority")
	// ErrBodyNotSent: the body is signed but the proxy did not pass it on.
	ErrBodyNotSent = errors.New("the request body was signed but the proxy did not send it; enable with_request_body or sign with " + UnsignedPayload)
	// ErrUnsignedPayloadNotAllowed: X-Sdk-Content-Sha256 is UNSIGNED-PAYLOAD but the API
	// requires a signed body.
	ErrUnsignedPayloadNotAllowed = errors.New("X-Sdk-Content-Sha256: " + UnsignedPayload + " is not accepted by this API; sign the body")
	// ErrSignatureMismatch: the signature does not match the request (or the secret).
	ErrSignatureMismatch = errors.New("signature does not match")
)

// detailError is a sentinel with a more precise message.
type detailError struct {
	kind error
	msg  string
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &detailError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) error {
	return &detailError{kind: ErrMalformed, msg: ErrMalformed.Error() + ": " + fmt.Sprintf(format, args...)}
}

// Authorization is a parsed `Authorization: SDK-HMAC-SHA256 Access=<appKey>,
// SignedHeaders=<a;b;c>, Signature=<hex>` value.
type Authorization struct {
	AppKey        string
	SignedHeaders []string // lower-case, as listed
	Signature     string   // lower-case hex, 64 chars
}

// String returns the header value in the form the SDKs send, which ParseAuthorization reads
// back to an equal Authorization.
func (a Authorization) String() string {
	var b strings.Builder
	n := len(Algorithm) + len(" Access=, SignedHeaders=, Signature=") + len(a.AppKey) + len(a.Signature)
	for _, h := range a.SignedHeaders {
		n += len(h) + 1
	}
	b.Grow(n)
	b.WriteString(Algorithm)
	b.WriteString(" Access=")
	b.WriteString(a.AppKey)
	b.WriteString(", SignedHeaders=")
	for i, h := range a.SignedHeaders {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(h)
	}
	b.WriteString(", Signature=")
	b.WriteString(a.Signature)
	return b.String()
}

// ParseAuthorization parses an Authorization header value. It returns ErrNotSigned when the
// value is of another scheme (so the caller can tell "some other scheme" from "malformed"),
// and an error wrapping ErrMalformed for anything malformed: a scheme name not written
// exactly SDK-HMAC-SHA256, missing, duplicate, unknown or empty parameters, an Access that is
// not 1..256 printable ASCII characters, SignedHeaders that are not lower-case header names,
// sorted, unique and including x-sdk-date, or a Signature that is not 64 hex digits.
// Parameters may come in any order, with any spaces or tabs around the commas; their names
// are case-sensitive as in the SDKs. A Signature in upper-case hex is returned lower-cased.
func ParseAuthorization(v string) (Authorization, error) {
	v = trimOWS(v)
	if len(v) < len(Algorithm) || !strings.EqualFold(v[:len(Algorithm)], Algorithm) {
		return Authorization{}, ErrNotSigned
	}
	rest := v[len(Algorithm):]
	if rest != "" && isTokenChar(rest[0]) { // a longer scheme name, e.g. SDK-HMAC-SHA256X
		return Authorization{}, ErrNotSigned
	}
	if v[:len(Algorithm)] != Algorithm {
		return Authorization{}, malformed("the scheme must be written %s", Algorithm)
	}
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return Authorization{}, malformed("expected Access, SignedHeaders and Signature after %s and a space", Algorithm)
	}
	rest = trimOWS(rest)

	var a Authorization
	var access, signed, sig string
	var seen [3]bool
	for more := true; more; {
		var param string
		if i := strings.IndexByte(rest, ','); i >= 0 {
			param, rest = rest[:i], rest[i+1:]
		} else {
			param, rest, more = rest, "", false
		}
		param = trimOWS(param)
		if param == "" {
			return Authorization{}, malformed("empty parameter")
		}
		eq := strings.IndexByte(param, '=')
		if eq < 0 {
			return Authorization{}, malformed("parameter %.32q has no value", param)
		}
		name, value := param[:eq], param[eq+1:]
		var idx int
		switch name {
		case "Access":
			idx, access = 0, value
		case "SignedHeaders":
			idx, signed = 1, value
		case "Signature":
			idx, sig = 2, value
		default:
			return Authorization{}, malformed("unknown parameter %.32q (want Access, SignedHeaders, Signature)", name)
		}
		if seen[idx] {
			return Authorization{}, malformed("duplicate parameter %s", name)
		}
		seen[idx] = true
	}
	switch {
	case !seen[0]:
		return Authorization{}, malformed("missing Access")
	case !seen[1]:
		return Authorization{}, malformed("missing SignedHeaders")
	case !seen[2]:
		return Authorization{}, malformed("missing Signature")
	}

	if err := checkAppKey(access); err != nil {
		return Authorization{}, err
	}
	a.AppKey = access

	if err := checkSignedHeaderList(signed); err != nil {
		return Authorization{}, err
	}
	a.SignedHeaders = splitSignedHeaders(signed)

	if len(sig) != signatureHexLen {
		return Authorization{}, malformed("Signature must be %d hex digits", signatureHexLen)
	}
	upper := false
	for i := 0; i < len(sig); i++ {
		c := sig[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return Authorization{}, malformed("Signature must be %d hex digits", signatureHexLen)
		}
	}
	if upper {
		sig = strings.ToLower(sig)
	}
	a.Signature = sig
	return a, nil
}

func checkAppKey(k string) error {
	if k == "" {
		return malformed("empty Access")
	}
	if len(k) > maxAppKeyLen {
		return malformed("Access longer than %d characters", maxAppKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' || c == ',' {
			return malformed("Access must be printable ASCII without spaces or commas")
		}
	}
	return nil
}

// checkSignedHeaderList checks a ';'-separated SignedHeaders value: lower-case header
// names (RFC 9110 tokens), strictly ascending (so sorted and unique), including x-sdk-date.
func checkSignedHeaderList(s string) error {
	if s == "" {
		return malformed("empty SignedHeaders")
	}
	if len(s) > maxSignedHeadersLen {
		return malformed("SignedHeaders longer than %d characters", maxSignedHeadersLen)
	}
	var prev string
	n := 0
	date := false
	for first := true; ; first = false {
		name := s
		i := strings.IndexByte(s, ';')
		if i >= 0 {
			name, s = s[:i], s[i+1:]
		}
		if err := checkHeaderName(name); err != nil {
			return err
		}
		if !first && name <= prev {
			if name == prev {
				return malformed("SignedHeaders lists %s twice", name)
			}
			return malformed("SignedHeaders must be sorted (%s comes after %s)", name, prev)
		}
		if n++; n > maxSignedHeaders {
			return malformed("more than %d SignedHeaders", maxSignedHeaders)
		}
		date = date || name == headerDate
		prev = name
		if i < 0 {
			break
		}
	}
	if !date {
		return malformed("SignedHeaders must include %s", headerDate)
	}
	return nil
}

func checkHeaderName(name string) error {
	if name == "" {
		return malformed("empty name in SignedHeaders")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			return malformed("SignedHeaders must be lower-case")
		}
		if !isTokenChar(c) {
			return malformed("SignedHeaders holds a character that is not allowed in a header name")
		}
	}
	return nil
}

// checkSignedHeaders is checkSignedHeaderList for an already split list.
func checkSignedHeaders(names []string) error {
	if len(names) == 0 {
		return malformed("empty SignedHeaders")
	}
	if len(names) > maxSignedHeaders {
		return malformed("more than %d SignedHeaders", maxSignedHeaders)
	}
	date := false
	for i, name := range names {
		if err := checkHeaderName(name); err != nil {
			return err
		}
		if i > 0 && name <= names[i-1] {
			if name == names[i-1] {
				return malformed("SignedHeaders lists %s twice", name)
			}
			return malformed("SignedHeaders must be sorted (%s comes after %s)", name, names[i-1])
		}
		date = date || name == headerDate
	}
	if !date {
		return malformed("SignedHeaders must include %s", headerDate)
	}
	return nil
}

func splitSignedHeaders(s string) []string {
	out := make([]string, 0, strings.Count(s, ";")+1)
	for {
		i := strings.IndexByte(s, ';')
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

// isTokenChar reports whether c may appear in an RFC 9110 token (header names, auth schemes).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
