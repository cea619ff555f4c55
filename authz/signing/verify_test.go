package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// signedPOST returns a POST request signed with vecSecret, and its Authorization.
func signedPOST(t *testing.T) (Request, Authorization) {
	t.Helper()
	req := Request{Method: "POST", Path: "/v1/orders/7", Query: "expand=items&lang=en", Host: "api.example.com",
		Header: headers("content-type", "application/json", "host", "api.example.com", "x-sdk-date", vecDate,
			"x-trace", "abc", "content-length", "23"),
		Body: []byte(`{"item":"book","qty":2}`), BodyKnown: true}
	return req, sign(t, req, "content-type", "host", "x-sdk-date")
}

func sign(t *testing.T, req Request, signed ...string) Authorization {
	t.Helper()
	v, err := Sign([]byte(vecSecret), vecAppKey, req, signed)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	a, err := ParseAuthorization(v)
	if err != nil {
		t.Fatalf("ParseAuthorization(%q): %v", v, err)
	}
	return a
}

// with returns req with header name set to value (absent when value is "<absent>").
func with(req Request, name, value string) Request {
	base := req.Header
	req.Header = func(n string) (string, bool) {
		if n == name {
			if value == "<absent>" {
				return "", false
			}
			return value, true
		}
		return base(n)
	}
	return req
}

func TestVerify(t *testing.T) {
	req, auth := signedPOST(t)
	now := vecNow
	ok := VerifyOptions{Now: now}

	tests := []struct {
		name    string
		secret  string
		req     func(Request) Request
		auth    func(Authorization) Authorization
		opt     VerifyOptions
		want    error
		wantMsg string // substring of the message
	}{
		{name: "valid", opt: ok},
		{name: "valid, default clock skew reaches 15m ahead", opt: VerifyOptions{Now: now.Add(-15 * time.Minute)}},
		{name: "valid, default clock skew reaches 15m behind", opt: VerifyOptions{Now: now.Add(15 * time.Minute)}},
		{name: "date 15m01s ahead", opt: VerifyOptions{Now: now.Add(-15*time.Minute - time.Second)}, want: ErrClockSkew, wantMsg: "ahead of"},
		{name: "date 15m01s behind", opt: VerifyOptions{Now: now.Add(15*time.Minute + time.Second)}, want: ErrClockSkew, wantMsg: "behind"},
		{name: "custom skew: at 5m", opt: VerifyOptions{Now: now.Add(5 * time.Minute), MaxClockSkew: 5 * time.Minute}},
		{name: "custom skew: past 5m", opt: VerifyOptions{Now: now.Add(5*time.Minute + time.Second), MaxClockSkew: 5 * time.Minute}, want: ErrClockSkew},
		{name: "custom skew: past 5m ahead", opt: VerifyOptions{Now: now.Add(-5*time.Minute - time.Second), MaxClockSkew: 5 * time.Minute}, want: ErrClockSkew},
		{name: "missing date", req: func(r Request) Request { return with(r, "x-sdk-date", "<absent>") }, opt: ok, want: ErrMissingDate},
		{name: "date in another format", req: func(r Request) Request { return with(r, "x-sdk-date", "2024-01-01T12:00:00Z") }, opt: ok, want: ErrMissingDate},
		{name: "date that does not exist", req: func(r Request) Request { return with(r, "x-sdk-date", "20240230T120000Z") }, opt: ok, want: ErrMissingDate},
		{name: "date checked before headers", req: func(r Request) Request {
			return with(with(r, "x-sdk-date", "<absent>"), "content-type", "<absent>")
		}, opt: ok, want: ErrMissingDate},
		{name: "missing signed header", req: func(r Request) Request { return with(r, "content-type", "<absent>") }, opt: ok,
			want: ErrMissingSignedHeader, wantMsg: "content-type"},
		{name: "host differs from authority", req: func(r Request) Request { return with(r, "host", "evil.example.com") }, opt: ok,
			want: ErrHostMismatch},
		{name: "authority differs from host", req: func(r Request) Request { r.Host = "evil.example.com"; return r }, opt: ok,
			want: ErrHostMismatch},
		{name: "host differs only in case", req: func(r Request) Request { r.Host = "API.Example.com"; return r }, opt: ok},
		{name: "no host header (HTTP/2): authority used", req: func(r Request) Request { return with(r, "host", "<absent>") }, opt: ok},
		{name: "body not sent, Content-Length", req: func(r Request) Request { r.Body, r.BodyKnown = nil, false; return r }, opt: ok,
			want: ErrBodyNotSent, wantMsg: "with_request_body"},
		{name: "body not sent, Transfer-Encoding", req: func(r Request) Request {
			r.Body, r.BodyKnown = nil, false
			return with(with(r, "content-length", "<absent>"), "transfer-encoding", "chunked")
		}, opt: ok, want: ErrBodyNotSent},
		{name: "body not sent, bad Content-Length", req: func(r Request) Request {
			r.Body, r.BodyKnown = nil, false
			return with(r, "content-length", "x")
		}, opt: ok, want: ErrBodyNotSent},
		{name: "body not sent, none announced: empty body hashed", req: func(r Request) Request {
			r.Body, r.BodyKnown = nil, false
			return with(r, "content-length", "0")
		}, opt: ok, want: ErrSignatureMismatch},
		{name: "unsigned payload not allowed", req: func(r Request) Request { return with(r, "x-sdk-content-sha256", UnsignedPayload) }, opt: ok,
			want: ErrUnsignedPayloadNotAllowed},
		{name: "unsigned payload allowed but the body was signed", req: func(r Request) Request {
			return with(r, "x-sdk-content-sha256", UnsignedPayload)
		}, opt: VerifyOptions{Now: now, AllowUnsignedPayload: true}, want: ErrSignatureMismatch},
		{name: "client-declared body hash is not trusted", req: func(r Request) Request {
			r.Body = []byte(`{"item":"book","qty":200}`)
			return with(r, "x-sdk-content-sha256", "6383114cff22e5f82e81e96fbe30c7239424b9ed893e27fea7eb67532aa03fb9")
		}, opt: ok, want: ErrSignatureMismatch},
		{name: "other secret", secret: "another-secret-of-the-same-length", opt: ok, want: ErrSignatureMismatch},
		{name: "empty secret", secret: "-", opt: ok, want: ErrSignatureMismatch},
		{name: "tampered method", req: func(r Request) Request { r.Method = "PUT"; return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "tampered path", req: func(r Request) Request { r.Path = "/v1/orders/8"; return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "path equivalent after canonicalisation", req: func(r Request) Request { r.Path = "/v1/%6Frders/7/"; return r }, opt: ok},
		{name: "tampered query value", req: func(r Request) Request { r.Query = "expand=items&lang=de"; return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "added query parameter", req: func(r Request) Request { r.Query += "&admin=1"; return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "added query key without value", req: func(r Request) Request { r.Query += "&admin"; return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "added query part with bad escape", req: func(r Request) Request { r.Query += "&a=%zz"; return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "query reordered", req: func(r Request) Request { r.Query = "lang=en&expand=items"; return r }, opt: ok},
		{name: "tampered signed header", req: func(r Request) Request { return with(r, "content-type", "text/plain") }, opt: ok, want: ErrSignatureMismatch},
		{name: "signed header re-spaced", req: func(r Request) Request { return with(r, "content-type", " application/json\t") }, opt: ok},
		{name: "unsigned header changed", req: func(r Request) Request { return with(r, "x-trace", "zzz") }, opt: ok},
		{name: "tampered body", req: func(r Request) Request { r.Body = []byte(`{"item":"book","qty":3}`); return r }, opt: ok, want: ErrSignatureMismatch},
		{name: "tampered date within skew", req: func(r Request) Request { return with(r, "x-sdk-date", "20240101T120001Z") }, opt: ok, want: ErrSignatureMismatch},
		{name: "one signature bit flipped", auth: func(a Authorization) Authorization {
			b := []byte(a.Signature)
			b[10] ^= 1
			if b[10] > 'f' || (b[10] > '9' && b[10] < 'a') {
				b[10] ^= 3
			}
			a.Signature = string(b)
			return a
		}, opt: ok, want: ErrSignatureMismatch},
		{name: "signature in upper case", auth: func(a Authorization) Authorization { a.Signature = strings.ToUpper(a.Signature); return a }, opt: ok},
		{name: "header dropped from SignedHeaders", auth: func(a Authorization) Authorization {
			a.SignedHeaders = []string{"host", "x-sdk-date"}
			return a
		}, opt: ok, want: ErrSignatureMismatch},
		{name: "signature not hex", auth: func(a Authorization) Authorization { a.Signature = strings.Repeat("z", 64); return a }, opt: ok, want: ErrMalformed},
		{name: "SignedHeaders without x-sdk-date", auth: func(a Authorization) Authorization {
			a.SignedHeaders = []string{"content-type", "host"}
			return a
		}, opt: ok, want: ErrMalformed},
		{name: "SignedHeaders unsorted", auth: func(a Authorization) Authorization {
			a.SignedHeaders = []string{"x-sdk-date", "host"}
			return a
		}, opt: ok, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, a := req, auth
			if tt.req != nil {
				r = tt.req(r)
			}
			if tt.auth != nil {
				a = tt.auth(a)
			}
			secret := vecSecret
			if tt.secret == "-" {
				secret = ""
			} else if tt.secret != "" {
				secret = tt.secret
			}
			err := Verify([]byte(secret), r, a, tt.opt)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not mention %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), secret) && secret != "" {
				t.Errorf("message %q holds the secret", err)
			}
		})
	}
}

// TestVerifyErrorsSafe: no error message carries the secret or the expected signature.
func TestVerifyErrorsSafe(t *testing.T) {
	req, auth := signedPOST(t)
	good := auth.Signature
	auth.Signature = strings.Repeat("0", 64)
	err := Verify([]byte(vecSecret), req, auth, VerifyOptions{Now: vecNow})
	if !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("Verify = %v", err)
	}
	for _, s := range []string{vecSecret, good, good[:16]} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("message %q holds %q", err, s)
		}
	}
}

func TestVerifyDefaultNow(t *testing.T) {
	date := time.Now().UTC().Format(DateFormat)
	req := Request{Method: "GET", Path: "/", Header: headers("x-sdk-date", date)}
	a := sign(t, req, "x-sdk-date")
	if err := Verify([]byte(vecSecret), req, a, VerifyOptions{}); err != nil {
		t.Fatalf("Verify with the wall clock: %v", err)
	}
}

func TestSignRoundTrip(t *testing.T) {
	reqs := []struct {
		req    Request
		signed []string
		opt    VerifyOptions
	}{
		{Request{Method: "GET", Path: "/", Host: "h", Header: headers("host", "h", "x-sdk-date", vecDate)}, []string{"x-sdk-date", "host"}, VerifyOptions{}},
		{Request{Method: "GET", Path: "/a b/%zz/%2F/ü", Query: "ü=1&u=2&+=+&=&&%=%", Host: "h",
			Header: headers("x-sdk-date", vecDate, "x-a", "1", "x-b", "")}, []string{"X-A", "x-b", "X-Sdk-Date"}, VerifyOptions{}},
		{Request{Method: "PATCH", Path: "/p", Header: headers("x-sdk-date", vecDate, "content-length", "3"),
			Body: []byte("abc"), BodyKnown: true}, []string{"x-sdk-date"}, VerifyOptions{}},
		{Request{Method: "PUT", Path: "/p", Header: headers("x-sdk-date", vecDate, "x-sdk-content-sha256", UnsignedPayload, "transfer-encoding", "chunked"),
			Body: []byte("ignored")}, []string{"x-sdk-date"}, VerifyOptions{AllowUnsignedPayload: true}},
	}
	for _, tt := range reqs {
		v, err := Sign([]byte(vecSecret), vecAppKey, tt.req, tt.signed)
		if err != nil {
			t.Fatalf("Sign(%+v): %v", tt.req, err)
		}
		a, err := ParseAuthorization(v)
		if err != nil {
			t.Fatalf("ParseAuthorization(%q): %v", v, err)
		}
		if a.AppKey != vecAppKey {
			t.Errorf("AppKey = %q", a.AppKey)
		}
		tt.opt.Now = vecNow
		if err := Verify([]byte(vecSecret), tt.req, a, tt.opt); err != nil {
			t.Errorf("Verify(Sign(%s %s?%s)): %v", tt.req.Method, tt.req.Path, tt.req.Query, err)
		}
		if err := Verify([]byte(vecSecret+"x"), tt.req, a, tt.opt); !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("Verify with another secret = %v", err)
		}
	}
}

func TestSignErrors(t *testing.T) {
	req := Request{Method: "GET", Path: "/", Header: headers("x-sdk-date", vecDate, "x-a", "1")}
	tests := []struct {
		name   string
		appKey string
		req    Request
		signed []string
		want   error
	}{
		{"no x-sdk-date signed", vecAppKey, req, []string{"x-a"}, ErrMalformed},
		{"duplicate", vecAppKey, req, []string{"x-a", "X-A", "x-sdk-date"}, ErrMalformed},
		{"bad name", vecAppKey, req, []string{"x a", "x-sdk-date"}, ErrMalformed},
		{"absent header", vecAppKey, req, []string{"x-b", "x-sdk-date"}, ErrMissingSignedHeader},
		{"empty appKey", "", req, []string{"x-sdk-date"}, ErrMalformed},
		{"appKey with comma", "a,b", req, []string{"x-sdk-date"}, ErrMalformed},
		{"no date", vecAppKey, with(req, "x-sdk-date", "<absent>"), []string{"x-sdk-date"}, ErrMissingDate},
		{"bad date", vecAppKey, with(req, "x-sdk-date", "yesterday"), []string{"x-sdk-date"}, ErrMissingDate},
	}
	for _, tt := range tests {
		if _, err := Sign([]byte(vecSecret), tt.appKey, tt.req, tt.signed); !errors.Is(err, tt.want) {
			t.Errorf("%s: Sign = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestHMAC holds the allocation-free HMAC to crypto/hmac for keys around the block size.
func TestHMAC(t *testing.T) {
	msg := []byte("SDK-HMAC-SHA256\n20240101T120000Z\n" + strings.Repeat("ab", 32))
	var buf []byte
	for n := 0; n <= 200; n++ {
		key := []byte(strings.Repeat("k\x00\xff", 70)[:n])
		for _, m := range [][]byte{nil, msg[:1], msg, append(msg, msg...)} {
			var got [sha256.Size]byte
			buf = hmacSHA256(&got, buf, key, m)
			h := hmac.New(sha256.New, key)
			h.Write(m)
			if !hmac.Equal(got[:], h.Sum(nil)) {
				t.Fatalf("key length %d, message length %d: differs from crypto/hmac", n, len(m))
			}
			for _, c := range buf[:cap(buf)] {
				if c != 0 {
					t.Fatalf("working buffer not wiped")
				}
			}
		}
	}
}

var raceEnabled bool

func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	req, auth := benchRequest()
	opt := VerifyOptions{Now: vecNow}
	secret := []byte(vecSecret)
	if err := Verify(secret, req, auth, opt); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Verify(secret, req, auth, opt) }); n != 0 {
		t.Errorf("Verify allocates %v times per call, want 0", n)
	}
}
