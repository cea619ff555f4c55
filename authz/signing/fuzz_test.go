package signing

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"SDK-HMAC-SHA256 Access=key-1, SignedHeaders=content-type;host;x-sdk-date, Signature=" + sig64,
		"SDK-HMAC-SHA256 Access=k,SignedHeaders=x-sdk-date,Signature=" + strings.ToUpper(sig64),
		"SDK-HMAC-SHA256\tSignature=" + sig64 + " ,  Access=k=v, SignedHeaders=a;x-sdk-date",
		"SDK-HMAC-SHA256 Access=k, Access=k, SignedHeaders=x-sdk-date, Signature=" + sig64,
		"SDK-HMAC-SHA256 Access=, SignedHeaders=x-sdk-date;host, Signature=" + sig64,
		"SDK-HMAC-SHA256 Access=k, SignedHeaders=Host;x-sdk-date;;, Signature=xyz",
		"sdk-hmac-sha256 Access=k",
		"SDK-HMAC-SHA256",
		"SDK-HMAC-SHA256X a=b",
		"Bearer token",
		"",
		",,,==;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		a, err := ParseAuthorization(v)
		if err != nil {
			if errors.Is(err, ErrNotSigned) == errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not exactly one of ErrNotSigned and ErrMalformed", err)
			}
			return
		}
		s := a.String()
		b, err := ParseAuthorization(s)
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", s, v, err)
		}
		if a.AppKey != b.AppKey || a.Signature != b.Signature || !slices.Equal(a.SignedHeaders, b.SignedHeaders) {
			t.Fatalf("round trip changed %+v into %+v", a, b)
		}
		if b.String() != s {
			t.Fatalf("String not stable: %q then %q", s, b.String())
		}
		// Whatever parses, Verify takes without panicking.
		req := Request{Method: "GET", Path: "/", Host: "h", Header: func(string) (string, bool) { return vecDate, true }}
		_ = Verify([]byte(vecSecret), req, a, VerifyOptions{Now: vecNow})
	})
}

// sdkURI and sdkQuery canonicalise the way the APIG Go SDK does, through net/url: the
// decoded path split on '/', and url.ParseQuery's keys and values sorted; each part escaped.
// They are a differential reference wherever net/url accepts the input.
func sdkURI(rawPath string) (string, bool) {
	p, err := url.PathUnescape(rawPath)
	if err != nil {
		return "", false
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = string(appendEscaped(nil, []byte(s)))
	}
	u := strings.Join(parts, "/")
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u, true
}

func sdkQuery(rawQuery string) (string, bool) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false
	}
	var out []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	}) {
		vs := slices.Clone(q[k])
		slices.Sort(vs)
		for _, v := range vs {
			out = append(out, string(appendEscaped(nil, []byte(k)))+"="+string(appendEscaped(nil, []byte(v))))
		}
	}
	return strings.Join(out, "&"), true
}

func canonicalQueryOf(q string) string {
	sc := getScratch()
	defer putScratch(sc)
	sc.parseQuery(q)
	return string(sc.appendQuery(nil))
}

func FuzzCanonicalRequest(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.req.Method, v.req.Path, v.req.Query, "x", v.req.Body)
	}
	f.Add("GET", "", "", "", []byte(nil))
	f.Add("GET", "/a%2Fb//c/./../%", "a=%zz&b=%&&=&;=;&%C3%A9=2&z=1", " v ", []byte("body"))
	f.Add("POST", "a%2", "+%2B+=%20&k", "\t", []byte{0, 1, 2})
	f.Add("G\nT", "/\n/\x00/\xff", "\n=\n", "\r\n", []byte("\n"))
	f.Fuzz(func(t *testing.T, method, path, query, hval string, body []byte) {
		req := Request{Method: method, Path: path, Query: query, Host: "h.example.com",
			Header: headers("host", "h.example.com", "x-custom", hval, "x-sdk-date", vecDate),
			Body:   body, BodyKnown: true}
		signed := []string{"host", "x-custom", "x-sdk-date"}

		cr := CanonicalRequest(req, signed, emptySHA)
		if again := CanonicalRequest(req, signed, emptySHA); again != cr {
			t.Fatalf("not deterministic:\n%q\n%q", cr, again)
		}
		uri := string(appendCanonicalURI(nil, path))
		if !strings.HasSuffix(uri, "/") {
			t.Fatalf("CanonicalURI(%q) = %q does not end with '/'", path, uri)
		}
		if !strings.HasPrefix(cr, method+"\n"+uri+"\n") {
			t.Fatalf("canonical request %q does not start with the method and URI %q", cr, uri)
		}
		if again := string(appendCanonicalURI(nil, uri)); again != uri {
			t.Fatalf("CanonicalURI not idempotent: %q -> %q -> %q", path, uri, again)
		}
		cq := canonicalQueryOf(query)
		if again := canonicalQueryOf(cq); again != cq {
			t.Fatalf("canonical query not idempotent: %q -> %q -> %q", query, cq, again)
		}
		if want, ok := sdkURI(path); ok && want != uri {
			t.Fatalf("CanonicalURI(%q) = %q, the Go SDK's way gives %q", path, uri, want)
		}
		if want, ok := sdkQuery(query); ok && want != cq {
			t.Fatalf("canonical query of %q = %q, the Go SDK's way gives %q", query, cq, want)
		}

		// Sign then Verify agree, and the body is covered.
		auth, err := Sign([]byte(vecSecret), vecAppKey, req, signed)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		a, err := ParseAuthorization(auth)
		if err != nil {
			t.Fatalf("ParseAuthorization(%q): %v", auth, err)
		}
		if err := Verify([]byte(vecSecret), req, a, VerifyOptions{Now: vecNow}); err != nil {
			t.Fatalf("Verify(Sign(req)): %v", err)
		}
		req.Body = append(slices.Clip(body), 'x')
		if err := Verify([]byte(vecSecret), req, a, VerifyOptions{Now: vecNow}); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("Verify with a longer body = %v", err)
		}
	})
}
