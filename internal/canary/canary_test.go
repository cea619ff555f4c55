package canary

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestLeaks(t *testing.T) {
	const secret = "S3cr3t-Canary-Value-7781"
	code := "PLAIN-APPCODE-0042"
	tests := []struct {
		name   string
		source string
		leak   bool
	}{
		{"clean", "credential shop/app denied: AUTH_FAILURE", false},
		{"raw", "appSecret=" + secret, true},
		{"upper-cased", strings.ToUpper(secret), true},
		{"base64", "data: " + base64.StdEncoding.EncodeToString([]byte(secret)), true},
		{"a truncated piece", "…" + secret[5:13] + "…", true},
		{"the digest of a hashed AppCode", "sha256:" + Digest(code)[1:], true},
		{"a piece of the digest is not a leak", Digest(code)[1:9], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Leaks([]string{secret, Digest(code)}, map[string]string{"log": tt.source})
			if (len(got) > 0) != tt.leak {
				t.Errorf("Leaks = %q, want a leak: %t", got, tt.leak)
			}
		})
	}
}
