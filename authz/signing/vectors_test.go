package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// The vectors below were built by hand from the algorithm (DESIGN.md §5 and the APIG SDKs):
// the canonical request is written out literally, and the expected signature is computed
// from that literal text by refSignature, a few lines over crypto/hmac that share nothing
// with the package. wantSig pins the same value as computed outside Go (Python's hmac and
// hashlib over the same literal), so a change to either side is caught.

const (
	vecSecret = "portcullis-test-secret-0123456789"
	vecAppKey = "app-key-4f5f626b"
	vecDate   = "20240101T120000Z"
	emptySHA  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

var vecNow = time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)

// refSignature is the independent reference: hex(HMAC-SHA256(secret, StringToSign)) of a
// literal canonical request.
func refSignature(secret, date, canonical string) string {
	h := sha256.Sum256([]byte(canonical))
	sts := "SDK-HMAC-SHA256\n" + date + "\n" + hex.EncodeToString(h[:])
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(sts))
	return hex.EncodeToString(m.Sum(nil))
}

func headers(kv ...string) func(string) (string, bool) {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

type vector struct {
	name      string
	req       Request
	signed    []string
	bodyHash  string
	canonical string // written by hand
	wantSig   string // computed outside Go from canonical
	opt       VerifyOptions
}

var vectors = []vector{
	{
		name: "GET, empty path, no query, host signed",
		req: Request{Method: "GET", Path: "", Host: "api.example.com",
			Header: headers("host", "api.example.com", "x-sdk-date", vecDate)},
		signed:   []string{"host", "x-sdk-date"},
		bodyHash: emptySHA,
		canonical: "GET\n" +
			"/\n" +
			"\n" +
			"host:api.example.com\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"host;x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantSig: "533cd74ce91a85bd93dcfac2c13df4161e2d828d87be117961746902ad465460",
	},
	{
		name: "query: repeated keys, empty values, key without '=', unsorted, empty part; host not signed",
		req: Request{Method: "GET", Path: "/orders", Query: "z=2&a=3&a=1&empty=&flag&b=x&&a=10", Host: "api.example.com",
			Header: headers("host", "api.example.com", "x-sdk-date", vecDate)},
		signed:   []string{"x-sdk-date"},
		bodyHash: emptySHA,
		canonical: "GET\n" +
			"/orders/\n" +
			"a=1&a=10&a=3&b=x&empty=&flag=&z=2\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantSig: "67b75e4abb14397ce41a1486bc4eb21f46ea24af779bd0cfd73e623ee2586823",
	},
	{
		name: "query: space, '+', %2B, %2F, '=', '*', '~', unicode (lower-case hex in), encoded key",
		req: Request{Method: "GET", Path: "/search", Host: "api.example.com",
			Query:  "q=hello%20world&plus=a+b&lit=a%2Bb&slash=a%2Fb&name=%e5%bc%a0%E4%B8%89&tilde=%7E~&star=*&a%20b=1&eq=x=y",
			Header: headers("host", "api.example.com", "x-sdk-date", vecDate)},
		signed:   []string{"host", "x-sdk-date"},
		bodyHash: emptySHA,
		canonical: "GET\n" +
			"/search/\n" +
			"a%20b=1&eq=x%3Dy&lit=a%2Bb&name=%E5%BC%A0%E4%B8%89&plus=a%20b&q=hello%20world&slash=a%2Fb&star=%2A&tilde=~~\n" +
			"host:api.example.com\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"host;x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantSig: "224443ec6e5495b9a175da02b1817d21cf122071fb5e4ab7b3a32bfa6de1b6d5",
	},
	{
		name: "path: encoded space, '+', unicode, no trailing slash",
		req: Request{Method: "GET", Path: "/v1/files/My%20Report%2Bdraft/%e6%96%87%E4%BB%B6.txt", Host: "api.example.com",
			Header: headers("x-sdk-date", vecDate)},
		signed:   []string{"x-sdk-date"},
		bodyHash: emptySHA,
		canonical: "GET\n" +
			"/v1/files/My%20Report%2Bdraft/%E6%96%87%E4%BB%B6.txt/\n" +
			"\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantSig: "81c76590ac7a376c1a797f328d1ce5d1e0e7547e07701237f3ac7f88280e9704",
	},
	{
		name: "path: reserved characters sent raw, %7E, trailing slash kept",
		req: Request{Method: "DELETE", Path: "/users/u@example.com;v=1/%7Ealice:x/", Host: "api.example.com",
			Header: headers("x-sdk-date", vecDate)},
		signed:   []string{"x-sdk-date"},
		bodyHash: emptySHA,
		canonical: "DELETE\n" +
			"/users/u%40example.com%3Bv%3D1/~alice%3Ax/\n" +
			"\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantSig: "6929549f35fc6a0910123c57a581585bb0bd3c752f35f453309f50da5a4787ee",
	},
	{
		name: "POST with a body, header value trimmed",
		req: Request{Method: "POST", Path: "/v1/orders", Query: "dry_run=true", Host: "api.example.com",
			Header: headers("content-type", "  application/json;charset=UTF-8 ", "host", "api.example.com",
				"x-sdk-date", vecDate, "content-length", "23"),
			Body: []byte(`{"item":"book","qty":2}`), BodyKnown: true},
		signed:   []string{"content-type", "host", "x-sdk-date"},
		bodyHash: "6383114cff22e5f82e81e96fbe30c7239424b9ed893e27fea7eb67532aa03fb9",
		canonical: "POST\n" +
			"/v1/orders/\n" +
			"dry_run=true\n" +
			"content-type:application/json;charset=UTF-8\n" +
			"host:api.example.com\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"content-type;host;x-sdk-date\n" +
			"6383114cff22e5f82e81e96fbe30c7239424b9ed893e27fea7eb67532aa03fb9",
		wantSig: "0f81c33601a7e735530656f78a1d9015285b948ccfcb642e276885a08579149f",
	},
	{
		name: "UNSIGNED-PAYLOAD, body not sent by the proxy",
		req: Request{Method: "PUT", Path: "/v1/blobs/1", Host: "api.example.com",
			Header: headers("x-sdk-content-sha256", "UNSIGNED-PAYLOAD", "x-sdk-date", vecDate, "content-length", "11"),
			Body:   nil, BodyKnown: false},
		signed:   []string{"x-sdk-content-sha256", "x-sdk-date"},
		bodyHash: UnsignedPayload,
		canonical: "PUT\n" +
			"/v1/blobs/1/\n" +
			"\n" +
			"x-sdk-content-sha256:UNSIGNED-PAYLOAD\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"x-sdk-content-sha256;x-sdk-date\n" +
			"UNSIGNED-PAYLOAD",
		wantSig: "7a883f6c7f28ec11837399ab8093aaa54272cb9cd056afcc8941adb446688855",
		opt:     VerifyOptions{AllowUnsignedPayload: true},
	},
	{
		name: "query: non-ASCII key sorts after 'z' (decoded order, as the Go SDK)",
		req: Request{Method: "GET", Path: "/", Query: "%C3%A9=2&z=1", Host: "api.example.com",
			Header: headers("x-sdk-date", vecDate)},
		signed:   []string{"x-sdk-date"},
		bodyHash: emptySHA,
		canonical: "GET\n" +
			"/\n" +
			"z=1&%C3%A9=2\n" +
			"x-sdk-date:20240101T120000Z\n" +
			"\n" +
			"x-sdk-date\n" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		wantSig: "3a30938ac0e30d47b5cb23e8fa814dd42308febe584498d7d6494d19ae292cf8",
	},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			if got := refSignature(vecSecret, vecDate, v.canonical); got != v.wantSig {
				t.Fatalf("reference signature of the literal = %s, pinned %s", got, v.wantSig)
			}
			if v.req.BodyKnown {
				h := sha256.Sum256(v.req.Body)
				if hex.EncodeToString(h[:]) != v.bodyHash {
					t.Fatalf("literal body hash is not sha256 of the body")
				}
			}
			if got := CanonicalRequest(v.req, v.signed, v.bodyHash); got != v.canonical {
				t.Fatalf("CanonicalRequest:\n got %q\nwant %q", got, v.canonical)
			}
			h := sha256.Sum256([]byte(v.canonical))
			wantSTS := "SDK-HMAC-SHA256\n" + vecDate + "\n" + hex.EncodeToString(h[:])
			if got := StringToSign(vecDate, v.canonical); got != wantSTS {
				t.Fatalf("StringToSign = %q, want %q", got, wantSTS)
			}

			wantAuth := "SDK-HMAC-SHA256 Access=" + vecAppKey + ", SignedHeaders=" + joinSemi(v.signed) + ", Signature=" + v.wantSig
			got, err := Sign([]byte(vecSecret), vecAppKey, v.req, v.signed)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got != wantAuth {
				t.Fatalf("Sign:\n got %s\nwant %s", got, wantAuth)
			}

			auth, err := ParseAuthorization(wantAuth)
			if err != nil {
				t.Fatalf("ParseAuthorization: %v", err)
			}
			opt := v.opt
			opt.Now = vecNow
			if err := Verify([]byte(vecSecret), v.req, auth, opt); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestJavaQueryOrder: the Java SDK sorts query parameters by their escaped form, so for a
// non-ASCII key it signs "%C3%A9=2&z=1" where the other SDKs sign "z=1&%C3%A9=2". Both are
// accepted; anything else is not.
func TestJavaQueryOrder(t *testing.T) {
	javaCanonical := "GET\n" +
		"/\n" +
		"%C3%A9=2&z=1\n" +
		"x-sdk-date:20240101T120000Z\n" +
		"\n" +
		"x-sdk-date\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	const javaSig = "250a23336306272f5e55dc957e71ad73bc419febbfd94f17a1902dbf4d54ccdf"
	if got := refSignature(vecSecret, vecDate, javaCanonical); got != javaSig {
		t.Fatalf("reference signature = %s, pinned %s", got, javaSig)
	}
	for _, q := range []string{"%C3%A9=2&z=1", "z=1&%C3%A9=2"} {
		req := Request{Method: "GET", Path: "/", Query: q, Header: headers("x-sdk-date", vecDate)}
		auth := Authorization{AppKey: vecAppKey, SignedHeaders: []string{"x-sdk-date"}, Signature: javaSig}
		if err := Verify([]byte(vecSecret), req, auth, VerifyOptions{Now: vecNow}); err != nil {
			t.Errorf("query %q, Java-ordered signature: %v", q, err)
		}
		auth.Signature = refSignature(vecSecret, vecDate, "GET\n/\n\nx-sdk-date:"+vecDate+"\n\nx-sdk-date\n"+emptySHA)
		if err := Verify([]byte(vecSecret), req, auth, VerifyOptions{Now: vecNow}); err == nil {
			t.Errorf("query %q: a signature without the query was accepted", q)
		}
	}
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ";"
		}
		out += x
	}
	return out
}
