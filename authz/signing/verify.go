package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Request is what signing needs to know of a request.
type Request struct {
	Method string
	Path   string // the path as sent, percent-encoded form, without the query ("/" if empty)
	Query  string // raw query without '?', may be empty
	Host   string // the request's authority (used when "host" is a signed header)
	// Header returns the value of a header by lower-case name; ok=false if absent. If a
	// header was sent several times the caller joins the values with "," before.
	Header func(lowerName string) (value string, ok bool)
	// Body is the request body when the proxy sent it; BodyKnown says whether it did
	// (Envoy with_request_body). A body the proxy cut short (allow_partial_message) is not
	// known.
	Body      []byte
	BodyKnown bool
}

// VerifyOptions are the options of Verify.
type VerifyOptions struct {
	// Now is the verifier's clock; zero means time.Now().
	Now time.Time
	// MaxClockSkew is how far X-Sdk-Date may be from Now, either way; 0 (or less) means
	// 15 minutes.
	MaxClockSkew time.Duration
	// AllowUnsignedPayload accepts X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD.
	AllowUnsignedPayload bool
}

// DefaultMaxClockSkew is the MaxClockSkew used when none is given.
const DefaultMaxClockSkew = 15 * time.Minute

// emptyBodyHash is hex(sha256("")).
var emptyBodyHash = []byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

var unsignedPayload = []byte(UnsignedPayload)

// Verify checks auth against req with secret, in this order: X-Sdk-Date present and
// parseable (ErrMissingDate) and within MaxClockSkew of Now (ErrClockSkew); every signed
// header present (ErrMissingSignedHeader); a signed "host" equal, ignoring case, to req.Host
// (ErrHostMismatch); the body hash available (ErrUnsignedPayloadNotAllowed, ErrBodyNotSent);
// then the signature, compared in constant time (ErrSignatureMismatch). An auth that
// ParseAuthorization would not return gives ErrMalformed.
//
// A signed "host" is read from req.Header("host") and, when that is absent (HTTP/2), from
// req.Host. When the query holds parameters that the Java SDK orders differently (it sorts
// them escaped, the other SDKs decoded), a signature made in either order is accepted.
//
// Verify does not allocate unless it returns an error.
func Verify(secret []byte, req Request, auth Authorization, opt VerifyOptions) error {
	var want [sha256.Size]byte
	if !decodeSignature(&want, auth.Signature) {
		return malformed("Signature must be %d hex digits", signatureHexLen)
	}
	if err := checkSignedHeaders(auth.SignedHeaders); err != nil {
		return err
	}

	date, t, err := requestDate(&req)
	if err != nil {
		return err
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	skew := opt.MaxClockSkew
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	if d := t.Sub(now); d > skew || d < -skew {
		dir := "ahead of"
		if d < 0 {
			dir, d = "behind", -d
		}
		return errorf(ErrClockSkew, "X-Sdk-Date %s is %s %s the server clock (at most %s allowed)",
			date, d.Truncate(time.Second), dir, skew)
	}

	for _, h := range auth.SignedHeaders {
		v, ok := headerValue(&req, h)
		if !ok {
			return errorf(ErrMissingSignedHeader, "signed header %s is missing from the request", h)
		}
		if h == headerHost && !strings.EqualFold(strings.TrimSpace(v), req.Host) {
			return ErrHostMismatch
		}
	}

	var sum [2 * sha256.Size]byte
	bodyHash, err := requestBodyHash(&req, opt.AllowUnsignedPayload, &sum)
	if err != nil {
		return err
	}

	sc := getScratch()
	defer putScratch(sc)
	sc.parseQuery(req.Query)
	if sc.matches(secret, &req, auth.SignedHeaders, bodyHash, date, &want) {
		return nil
	}
	if len(sc.pairs) > 1 && sc.escapedOrderDiffers() {
		sc.sortEscaped()
		if sc.matches(secret, &req, auth.SignedHeaders, bodyHash, date, &want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}

// matches computes the signature of req (its query parsed into sc) and compares it with want
// in constant time.
func (sc *scratch) matches(secret []byte, req *Request, signedHeaders []string, bodyHash []byte, date string, want *[sha256.Size]byte) bool {
	var got [sha256.Size]byte
	sc.sign(&got, secret, req, signedHeaders, bodyHash, date)
	return hmac.Equal(got[:], want[:])
}

// sign computes the signature of req (its query parsed into sc).
func (sc *scratch) sign(out *[sha256.Size]byte, secret []byte, req *Request, signedHeaders []string, bodyHash []byte, date string) {
	sc.canon = sc.appendCanonicalRequest(sc.canon[:0], req, signedHeaders, bodyHash)
	var buf [len(Algorithm) + len(DateFormat) + 2 + 2*sha256.Size]byte
	sts := appendStringToSign(buf[:0], date, sc.canon)
	sc.mac = hmacSHA256(out, sc.mac, secret, sts)
}

// decodeSignature decodes 64 hex digits (either case).
func decodeSignature(dst *[sha256.Size]byte, s string) bool {
	if len(s) != signatureHexLen {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// requestDate reads X-Sdk-Date.
func requestDate(req *Request) (string, time.Time, error) {
	var date string
	ok := false
	if req.Header != nil {
		date, ok = req.Header(headerDate)
	}
	if !ok {
		return "", time.Time{}, ErrMissingDate
	}
	date = strings.TrimSpace(date)
	t, err := time.Parse(DateFormat, date)
	if err != nil {
		return "", time.Time{}, ErrMissingDate
	}
	return date, t, nil
}

// requestBodyHash returns the body hash to sign: UNSIGNED-PAYLOAD when the client asked for
// it (and it is allowed), else the hex SHA-256 of the body, written into sum.
func requestBodyHash(req *Request, allowUnsigned bool, sum *[2 * sha256.Size]byte) ([]byte, error) {
	if req.Header != nil {
		if v, ok := req.Header(headerContentSHA256); ok && strings.TrimSpace(v) == UnsignedPayload {
			if !allowUnsigned {
				return nil, ErrUnsignedPayloadNotAllowed
			}
			return unsignedPayload, nil
		}
	}
	if !req.BodyKnown && mayHaveBody(req) {
		return nil, ErrBodyNotSent
	}
	if len(req.Body) == 0 {
		return emptyBodyHash, nil
	}
	h := sha256.Sum256(req.Body)
	hex.Encode(sum[:], h[:])
	return sum[:], nil
}

// mayHaveBody reports whether the headers announce a body: a Content-Length other than 0, or
// a Transfer-Encoding. (An HTTP/2 request may carry a body with neither; its signature then
// fails as a mismatch, since the body hash signed is not that of an empty body.)
func mayHaveBody(req *Request) bool {
	if req.Header == nil {
		return false
	}
	if _, ok := req.Header("transfer-encoding"); ok {
		return true
	}
	if v, ok := req.Header("content-length"); ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
		return err != nil || n > 0
	}
	return false
}

// hmacSHA256 writes HMAC-SHA256(key, msg) into out (RFC 2104), using buf as its working
// space (returned for reuse, wiped). It is the construction of crypto/hmac without its
// allocations; the tests hold it to crypto/hmac.
func hmacSHA256(out *[sha256.Size]byte, buf, key, msg []byte) []byte {
	const blockSize = 64
	var k [blockSize]byte
	if len(key) > blockSize {
		h := sha256.Sum256(key)
		copy(k[:], h[:])
		clear(h[:])
	} else {
		copy(k[:], key)
	}
	buf = buf[:0]
	for _, c := range k {
		buf = append(buf, c^0x36)
	}
	buf = append(buf, msg...)
	inner := sha256.Sum256(buf)
	clear(buf)
	buf = buf[:0]
	for _, c := range k {
		buf = append(buf, c^0x5c)
	}
	buf = append(buf, inner[:]...)
	*out = sha256.Sum256(buf)
	clear(buf)
	clear(k[:])
	return buf[:0]
}

// Sign returns the Authorization header value for req, signing exactly signedHeaders
// (lower-cased and sorted; they must include x-sdk-date, and each must be present via
// req.Header, "host" also via req.Host). X-Sdk-Date must hold a date in DateFormat. The body
// is signed as req.Body unless X-Sdk-Content-Sha256 is UNSIGNED-PAYLOAD. The query is
// ordered as the Go SDK orders it.
func Sign(secret []byte, appKey string, req Request, signedHeaders []string) (string, error) {
	if err := checkAppKey(appKey); err != nil {
		return "", err
	}
	names := make([]string, len(signedHeaders))
	for i, h := range signedHeaders {
		names[i] = strings.ToLower(strings.TrimSpace(h))
	}
	slices.Sort(names)
	if err := checkSignedHeaders(names); err != nil {
		return "", err
	}
	date, _, err := requestDate(&req)
	if err != nil {
		return "", err
	}
	for _, h := range names {
		if _, ok := headerValue(&req, h); !ok {
			return "", errorf(ErrMissingSignedHeader, "signed header %s is missing from the request", h)
		}
	}
	bodyHash := unsignedPayload
	if v, ok := req.Header(headerContentSHA256); !ok || strings.TrimSpace(v) != UnsignedPayload {
		var sum [2 * sha256.Size]byte
		h := sha256.Sum256(req.Body)
		hex.Encode(sum[:], h[:])
		bodyHash = sum[:]
	}

	sc := getScratch()
	defer putScratch(sc)
	sc.parseQuery(req.Query)
	var sig [sha256.Size]byte
	sc.sign(&sig, secret, &req, names, bodyHash, date)
	return Authorization{AppKey: appKey, SignedHeaders: names, Signature: hex.EncodeToString(sig[:])}.String(), nil
}
