package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authz/signing"
)

const sampleCode = "5f0c8a1e7b3d4c29a6e1f08b2d7c3e95mobileapp"

// TestSignRoundTrip: what `portcullis sign` prints verifies with the same secret, for the
// variants a client uses.
func TestSignRoundTrip(t *testing.T) {
	t.Setenv("PORTCULLIS_APP_SECRET", "mobile-app-secret-0001-change-me")
	tests := []struct {
		name string
		args []string
		body string
	}{
		{"GET with query", []string{"--url", "https://api.example.com/orders/7?b=2&a=1&a=0"}, ""},
		{"POST with body and header", []string{"--method", "POST", "--url", "https://api.example.com/orders", "-H", "Content-Type: application/json", "--data", `{"id":7}`}, `{"id":7}`},
		{"unsigned payload", []string{"--method", "PUT", "--url", "http://api.example.com:8080/orders/%E4%B8%AD", "--unsigned-payload"}, "ignored"},
		{"host not signed", []string{"--url", "https://api.example.com/x", "--sign-host=false"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"--app-key", "mobile-app-key-0001"}, tt.args...)
			if err := sign(args, &out); err != nil {
				t.Fatal(err)
			}
			headers := map[string]string{}
			for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
				k, v, _ := strings.Cut(line, ": ")
				headers[strings.ToLower(k)] = v
			}
			auth, err := signing.ParseAuthorization(headers["authorization"])
			if err != nil {
				t.Fatalf("%v in %q", err, out.String())
			}
			var method, rawURL string = "GET", ""
			for i := 0; i < len(tt.args); i++ {
				switch tt.args[i] {
				case "--method":
					method = tt.args[i+1]
				case "--url":
					rawURL = tt.args[i+1]
				}
			}
			u := strings.SplitN(strings.SplitN(rawURL, "://", 2)[1], "/", 2)
			host, target := u[0], "/"+u[1]
			path, query, _ := strings.Cut(target, "?")
			err = signing.Verify([]byte("mobile-app-secret-0001-change-me"), signing.Request{
				Method: method, Path: path, Query: query, Host: host,
				Header:    func(n string) (string, bool) { v, ok := headers[n]; return v, ok },
				Body:      []byte(tt.body),
				BodyKnown: true,
			}, auth, signing.VerifyOptions{Now: time.Now(), AllowUnsignedPayload: true})
			if err != nil {
				t.Errorf("the signed request does not verify: %v\n%s", err, out.String())
			}
		})
	}
}

func TestSignCurlLine(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("mobile-app-secret-0001-change-me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := sign([]string{"--app-key", "k", "--app-secret-file", secret, "--curl", "--connect", "127.0.0.1:9002", "--url", "http://api.example.com/a?x=it's"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, want := range []string{"curl -s -X 'GET'", "-H 'Authorization: SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=", "--connect-to '::127.0.0.1:9002'", `'http://api.example.com/a?x=it'\''s'`} {
		if !strings.Contains(line, want) {
			t.Errorf("curl line lacks %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "mobile-app-secret") {
		t.Error("the curl line holds the secret")
	}
}

func TestSignNeedsItsInputs(t *testing.T) {
	t.Setenv("PORTCULLIS_APP_SECRET", "")
	if err := sign([]string{"--app-key", "k", "--url", "http://a/"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("no secret: %v", err)
	}
}

// TestCheckSamples decides requests against config/samples without a cluster.
func TestCheckSamples(t *testing.T) {
	samples := filepath.Join("..", "..", "config", "samples")
	tests := []struct {
		name  string
		args  []string
		allow bool
		say   string
	}{
		{"two factors", []string{"--url", "http://api.example.com/orders/7?test=demo", "-H", "X-App-Code: " + sampleCode, "-H", "token: t", "--authorizer-answer", "allow"}, true, "x-portcullis-credential: shop/mobile-app"},
		{"authorizer says no", []string{"--url", "http://api.example.com/orders/7?test=demo", "-H", "X-App-Code: " + sampleCode, "-H", "token: t", "--authorizer-answer", "deny"}, false, "DENY 403 ACCESS_DENIED"},
		{"no credential", []string{"--url", "http://api.example.com/orders/7?test=demo", "--authorizer-answer", "allow"}, false, "DENY 401 AUTH_HEADER_MISSING"},
		{"anonymous", []string{"--url", "http://api.example.com/healthz"}, true, "route:    Exact /healthz"},
		{"no route", []string{"--url", "http://nowhere.example.com/"}, false, "DENY 404 ROUTE_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			allowed, err := check(append([]string{"--files", samples}, tt.args...), &out)
			if err != nil {
				t.Fatal(err)
			}
			if allowed != tt.allow || !strings.Contains(out.String(), tt.say) {
				t.Errorf("allowed=%t, want %t; output lacks %q:\n%s", allowed, tt.allow, tt.say, out.String())
			}
			if strings.Contains(out.String(), "warning") {
				t.Errorf("the samples should compile cleanly:\n%s", out.String())
			}
		})
	}
}
