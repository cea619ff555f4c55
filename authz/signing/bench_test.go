package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

// benchRequest is a typical signed GET: 3 signed headers (as the SDKs sign them), a few
// unsigned ones, a small query.
func benchRequest() (Request, Authorization) {
	h := [][2]string{
		{"accept", "application/json"},
		{"content-type", "application/json"},
		{"host", "api.example.com"},
		{"user-agent", "apig-sdk-go/1.0"},
		{"x-request-id", "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"},
		{"x-sdk-date", vecDate},
	}
	req := Request{Method: "GET", Path: "/v1/orders/7", Query: "lang=en&expand=items&page=2", Host: "api.example.com",
		Header: func(name string) (string, bool) { // a linear scan, as the decision engine does
			for i := range h {
				if h[i][0] == name {
					return h[i][1], true
				}
			}
			return "", false
		}}
	v, err := Sign([]byte(vecSecret), vecAppKey, req, []string{"content-type", "host", "x-sdk-date"})
	if err != nil {
		panic(err)
	}
	a, err := ParseAuthorization(v)
	if err != nil {
		panic(err)
	}
	return req, a
}

func BenchmarkVerify(b *testing.B) {
	req, auth := benchRequest()
	secret := []byte(vecSecret)
	opt := VerifyOptions{Now: vecNow}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(secret, req, auth, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	req, auth := benchRequest()
	secret := []byte(vecSecret)
	opt := VerifyOptions{Now: vecNow}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := Verify(secret, req, auth, opt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyMismatch(b *testing.B) {
	req, auth := benchRequest()
	auth.Signature = strings.Repeat("0", 64)
	secret := []byte(vecSecret)
	opt := VerifyOptions{Now: vecNow}
	b.ReportAllocs()
	for b.Loop() {
		_ = Verify(secret, req, auth, opt)
	}
}

func BenchmarkVerifyPOST4KiB(b *testing.B) {
	req, _ := benchRequest()
	req.Method = "POST"
	req.Body = []byte(strings.Repeat("x", 4096))
	req.BodyKnown = true
	v, err := Sign([]byte(vecSecret), vecAppKey, req, []string{"content-type", "host", "x-sdk-date"})
	if err != nil {
		b.Fatal(err)
	}
	auth, _ := ParseAuthorization(v)
	secret := []byte(vecSecret)
	opt := VerifyOptions{Now: vecNow}
	b.ReportAllocs()
	b.SetBytes(int64(len(req.Body)))
	for b.Loop() {
		if err := Verify(secret, req, auth, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	_, auth := benchRequest()
	v := auth.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	req, _ := benchRequest()
	secret := []byte(vecSecret)
	signed := []string{"content-type", "host", "x-sdk-date"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(secret, vecAppKey, req, signed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHMAC compares the pooled HMAC with crypto/hmac on a string to sign.
func BenchmarkHMAC(b *testing.B) {
	key := []byte(vecSecret)
	msg := []byte("SDK-HMAC-SHA256\n20240101T120000Z\n" + strings.Repeat("ab", 32))
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		var out [sha256.Size]byte
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = hmacSHA256(&out, buf, key, msg)
		}
	})
	b.Run("crypto-hmac", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := hmac.New(sha256.New, key)
			h.Write(msg)
			_ = h.Sum(nil)
		}
	})
}
