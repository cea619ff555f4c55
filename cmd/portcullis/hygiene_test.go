package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portcullis-dev/portcullis/authz/signing"
	"github.com/portcullis-dev/portcullis/controllers"
	"github.com/portcullis-dev/portcullis/internal/canary"
)

// Canaries: distinctive secret values planted in the hygiene world. None of them may show
// up anywhere an operator or an attacker can read: logs (at any verbosity, with
// --log-decisions), /metrics, deny bodies and headers, CLI output, load errors.
const (
	cSecret       = "cnrySC-q7Vd2pLx9Kw3Hy"            // appSecret of the good credential
	cPlainCode    = "cnryPC-Zt4mW8rQ2nB6vX1cJ5kL9qR7s" // plain AppCode of the good credential
	cHashedCode   = "cnryHC-Pw3eR7tY1uI5oA9sD2fG6hJ4k" // stored only as sha256:<hex>
	cShortSecret  = "cnrySS-8kq2Zx"                    // appSecret under 16 bytes: SecretInvalid
	cShortCode    = "cnryBC-3mZ7qP"                    // AppCode under 32 characters: SecretInvalid
	cBadHash      = "cnryBH-xx9Yy8Zz7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6Ll5Kk4Jj3Ii2Hh"
	cNoKeySecret  = "cnryNK-4411xQ7wE9" // a Secret without appKey
	cDisabledSec  = "cnryDS-91zzA3kP5"
	cDisabledCode = "cnryDC-Hq8Wm3Lp5Rt7Yv2Nc4Bx6Zj1Ka"
	cExpiredCode  = "cnryEC-Kd6Fs1Gh8Jx3Zb5Mn7Qp2Wr4Ty"
	cOtherCode    = "cnryOC-Vb2Nm4Qw6Er8Ty1Ui3Op5As7Df" // valid, bound nowhere
	cWrongCode    = "cnryWC-Ap5Sd7Fg9Hj2Kl4Zx6Cv8Bn1Mq" // presented, known to nobody
	cWrongSecret  = "cnryWS-Ui8Op0Lk3Jh5Gf"             // signs, known to nobody
	cUserData     = "cnryUD-hx8Pq2Wz4Lm"                // authorizer user_data from a Secret
	cLongUserData = "cnryLU-Rr5Tt6Yy7"                  // in a user_data over 2048 characters
	cUnlabelled   = "cnryUL-Zq1Xw2Ce3"                  // in a Secret without the label
	cQuery        = "cnryQI-Mm3Nn4Bb5Vv6"               // identity source in the query
	cCookie       = "cnryCI-Gg7Hh8Jj9Kk0"               // identity source in a cookie
	cToken        = "cnryTK-"                           // identity source in a header; + the answer wanted
	// Bad files: values in documents the file source refuses.
	cBadB64     = "cnryB6-Ee1Rr2Tt3!!"
	cNumeric    = "90210733311455599"
	cDupKey     = "cnryDK-Yy4Uu5Ii6"
	cSeparator  = "cnrySP-Oo7Pp8Aa9"
	cYAMLError  = "cnryYE-Ss1Dd2Ff3"
	cUnknownFld = "cnryUF-Gg4Hh5Jj6"
	cCLIHeader  = "cnryCH-Jj6Kk7Ll8"
)

// hygieneWorld writes the policy directory: every kind of credential and authorizer, good
// and broken, all holding canaries.
func hygieneWorld(t *testing.T, authzURL, deadURL string) string {
	dir := t.TempDir()
	files := map[string]string{
		"00-secrets.yaml": fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: good, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData:
  appKey: hyg-good
  appSecret: %[1]s
  appCodes: |
    %[2]s
    sha256:%[3]s
---
apiVersion: v1
kind: Secret
metadata: {name: short, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-short, appSecret: %[4]s}
---
apiVersion: v1
kind: Secret
metadata: {name: badcode, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-badcode, appCodes: %[5]s}
---
apiVersion: v1
kind: Secret
metadata: {name: badhash, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-badhash, appCodes: "sha256:%[6]s"}
---
apiVersion: v1
kind: Secret
metadata: {name: nokey, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
data: {appSecret: %[7]s}
---
apiVersion: v1
kind: Secret
metadata: {name: disabled, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-disabled, appSecret: %[8]s, appCodes: %[9]s}
---
apiVersion: v1
kind: Secret
metadata: {name: expired, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-expired, appCodes: %[10]s}
---
apiVersion: v1
kind: Secret
metadata: {name: other, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-other, appCodes: %[11]s}
---
apiVersion: v1
kind: Secret
metadata: {name: userdata, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {data: %[12]s, long: %[13]s}
---
apiVersion: v1
kind: Secret
metadata: {name: unlabelled, namespace: hyg}
stringData: {appKey: hyg-unlabelled, appSecret: %[14]s}
`, cSecret, cPlainCode, canary.Digest(cHashedCode)[1:], cShortSecret, cShortCode, cBadHash,
			base64.StdEncoding.EncodeToString([]byte(cNoKeySecret)), cDisabledSec, cDisabledCode, cExpiredCode, cOtherCode,
			cUserData, cLongUserData+strings.Repeat("x", 2100), cUnlabelled),
		"10-credentials.yaml": `apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: good, namespace: hyg}
spec: {secretRef: {name: good}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: short, namespace: hyg}
spec: {secretRef: {name: short}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: badcode, namespace: hyg}
spec: {secretRef: {name: badcode}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: badhash, namespace: hyg}
spec: {secretRef: {name: badhash}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: nokey, namespace: hyg}
spec: {secretRef: {name: nokey}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: disabled, namespace: hyg}
spec: {secretRef: {name: disabled}, disabled: true}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: expired, namespace: hyg}
spec: {secretRef: {name: expired}, expiresAt: "2020-01-01T00:00:00Z"}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: other, namespace: hyg}
spec: {secretRef: {name: other}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: Credential
metadata: {name: unlabelled, namespace: hyg}
spec: {secretRef: {name: unlabelled}}
`,
		"20-authorizers.yaml": fmt.Sprintf(`apiVersion: auth.portcullis.dev/v1alpha1
kind: CustomAuthorizer
metadata: {name: fn, namespace: hyg}
spec:
  url: %[1]s
  identitySources: [{in: Header, name: token}, {in: Query, name: q}, {in: Cookie, name: sid}]
  cache: {ttl: 0s}
  timeout: 300ms
  userDataFrom: {secretKeyRef: {name: userdata, key: data}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: CustomAuthorizer
metadata: {name: dead, namespace: hyg}
spec:
  url: %[2]s
  identitySources: [{in: Header, name: token}]
  userDataFrom: {secretKeyRef: {name: userdata, key: data}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: CustomAuthorizer
metadata: {name: toolong, namespace: hyg}
spec:
  url: %[1]s
  identitySources: [{in: Header, name: token}]
  userDataFrom: {secretKeyRef: {name: userdata, key: long}}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: CustomAuthorizer
metadata: {name: nokey, namespace: hyg}
spec:
  url: %[1]s
  identitySources: [{in: Header, name: token}]
  userDataFrom: {secretKeyRef: {name: userdata, key: missing}}
`, authzURL, deadURL),
		"30-bindings.yaml": `apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: two-factor, namespace: hyg}
spec:
  hosts: [hyg.example.com]
  routes: [{path: /app}]
  app: {methods: [Signature, AppCode], credentials: [good, short, badcode, badhash, nokey, disabled, expired]}
  customAuthorizer: {name: fn}
  upstream: {contextHeaderPrefix: x-ctx-}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: dead, namespace: hyg}
spec:
  hosts: [hyg.example.com]
  routes: [{path: /dead}]
  app: {methods: [AppCode], credentials: [good]}
  customAuthorizer: {name: dead}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: broken, namespace: hyg}
spec:
  hosts: [hyg.example.com]
  routes: [{path: /broken}, {path: /nokey}]
  app: {methods: [AppCode], credentials: [good]}
  customAuthorizer: {name: toolong}
---
apiVersion: auth.portcullis.dev/v1alpha1
kind: APIBinding
metadata: {name: nokey, namespace: hyg}
spec:
  hosts: [nokey.hyg.example.com]
  routes: [{path: /}]
  customAuthorizer: {name: nokey}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// badFile is a manifest the file source refuses, each document for its own reason, with a
// canary next to each problem.
var badFile = fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: b64, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
data: {appKey: aHlnLWI2NA==, appSecret: "%[1]s"}
---
apiVersion: v1
kind: Secret
metadata: {name: numeric, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData: {appKey: hyg-numeric, appSecret: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: dup, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData:
  appKey: hyg-dup
  appSecret: %[3]s
  appSecret: %[3]s
---
apiVersion: v1
kind: Secret
metadata: {name: yamlerr, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
stringData:
  appSecret: %[5]s: x
---
apiVersion: v1
kind: Secret
metadata: {name: unknown, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
strngData: {appSecret: %[6]s}
--- %[4]s
apiVersion: v1
kind: Secret
metadata: {name: separator, namespace: hyg, labels: {auth.portcullis.dev/credential: "true"}}
`, cBadB64, cNumeric, cDupKey, cSeparator, cYAMLError, cUnknownFld)

// badFileProblems is what the load error says about badFile, one entry per document.
var badFileProblems = []string{
	`40-bad.yaml:4: Secret "hyg/b64": data.appSecret: invalid base64`,
	`40-bad.yaml:9: Secret "hyg/numeric": stringData: got number, want string`,
	`40-bad.yaml:17: invalid YAML: key "appSecret" already set in map`,
	`40-bad.yaml:23: invalid YAML: mapping values are not allowed`,
	`40-bad.yaml:28: Secret "hyg/unknown": unknown field "strngData"`,
	`40-bad.yaml:29: content after the document separator is not supported`,
}

// token returns the identity value that makes the test authorizer answer a given way (the
// answer spelt backwards, so that no piece of a token is an English word).
func token(answer string) string { return cToken + reverse(answer) + "-Wq2Er4Ty6" }

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// testAuthorizer is a custom authorizer whose answer is chosen by the token; its failures
// echo the token back, as careless functions do.
func testAuthorizer(t *testing.T) (*httptest.Server, *sync.Map) {
	seen := &sync.Map{} // user_data values received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Headers  map[string]string `json:"headers"`
			UserData string            `json:"user_data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		seen.Store(ev.UserData, true)
		tok := ev.Headers["token"]
		answer := reverse(strings.TrimSuffix(strings.TrimPrefix(tok, cToken), "-Wq2Er4Ty6"))
		switch answer {
		case "allow":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"u-1"}}`)
		case "deny":
			_, _ = io.WriteString(w, `{"status":"deny","context":{"why":"`+tok+`"}}`)
		case "error":
			http.Error(w, "token "+tok+" crashed the function", http.StatusInternalServerError)
		case "forbidden":
			http.Error(w, "token "+tok+" is not welcome", http.StatusForbidden)
		case "malformed":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"`+tok+`"`)
		case "badkey":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"`+tok+`.x":"x"}}`)
		case "control":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"`+tok+`\u0001"}}`)
		case "status":
			_, _ = io.WriteString(w, `{"status":"`+tok+`"}`)
		case "wrapped":
			_, _ = io.WriteString(w, `{"statusCode":200,"body":"`+tok+`"}`)
		case "redirect":
			http.Redirect(w, r, "http://elsewhere.example.com/?token="+tok, http.StatusFound)
		case "huge":
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"`+strings.Repeat(tok, 1<<16)+`"}}`)
		case "slow":
			time.Sleep(time.Second)
			_, _ = io.WriteString(w, `{"status":"allow"}`)
		default:
			http.Error(w, "unknown token "+tok, http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// capture is everything written to os.Stderr while it runs.
type capture struct {
	canary.Log
	orig *os.File
	w    *os.File
	done chan struct{}
}

// captureStderr sends everything written to os.Stderr into a buffer until stop.
func captureStderr(t *testing.T) *capture {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{orig: os.Stderr, w: w, done: make(chan struct{})}
	os.Stderr = w
	go func() { _, _ = io.Copy(&c.Log, r); _ = r.Close(); close(c.done) }()
	return c
}

// stop restores os.Stderr and returns everything captured.
func (c *capture) stop() string {
	if c.w != nil {
		os.Stderr = c.orig
		_ = c.w.Close()
		<-c.done
		c.w = nil
	}
	return c.String()
}

type hygieneRequest struct {
	name    string
	path    string // on hyg.example.com unless it names a host
	headers [][2]string
	signKey string // sign with this appKey ...
	signSec string // ... and secret
	status  int
	code    string
}

func signedHeaders(t *testing.T, appKey, secret, method, host, target string) [][2]string {
	date := time.Now().UTC().Format(signing.DateFormat)
	path, query, _ := strings.Cut(target, "?")
	hs := map[string]string{"x-sdk-date": date, "host": host}
	auth, err := signing.Sign([]byte(secret), appKey, signing.Request{
		Method: method, Path: path, Query: query, Host: host,
		Header: func(n string) (string, bool) { v, ok := hs[n]; return v, ok }, BodyKnown: true,
	}, []string{"host", "x-sdk-date"})
	if err != nil {
		t.Fatal(err)
	}
	return [][2]string{{"X-Sdk-Date", date}, {"Authorization", auth}}
}

// TestSecretsHygiene runs `portcullis serve --source=files --log-decisions -v 10` in this
// process against a world full of canaries, drives every kind of allow, deny and failure
// through both front-ends, breaks the policy directory, runs `check` and `sign` with good
// and bad input, and then looks for every canary in everything it captured.
func TestSecretsHygiene(t *testing.T) {
	fn, seenUserData := testAuthorizer(t)
	dead := freeAddr(t) // nothing listens there
	dir := hygieneWorld(t, fn.URL+"/verify", "http://"+dead+"/verify")
	grpcAddr, httpAddr, metricsAddr, healthAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)

	sources := map[string]string{}
	stderr := captureStderr(t)
	served := make(chan error, 1)
	go func() {
		served <- serve([]string{"--source=files", "--files=" + dir, "--files-debounce=20ms", "--log-decisions", "-v=10",
			"--grpc-addr=" + grpcAddr, "--http-addr=" + httpAddr, "--metrics-addr=" + metricsAddr, "--health-addr=" + healthAddr})
	}()
	stopped := false
	shutdown := func() {
		if stopped {
			return
		}
		stopped = true
		select {
		case err := <-served:
			// Its signal handler is gone: SIGTERM would end the test binary.
			t.Errorf("serve returned before it was stopped: %v", err)
			return
		default:
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Error(err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}
	defer func() {
		shutdown()
		if out := stderr.stop(); t.Failed() {
			t.Logf("serve's log:\n%s", out)
		}
	}()

	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := get("http://" + healthAddr + "/readyz"); code == http.StatusOK {
			break
		}
		select {
		case err := <-served:
			t.Fatalf("serve stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	ids := func(answer string) [][2]string {
		return [][2]string{{"token", token(answer)}, {"Cookie", "sid=" + cCookie}}
	}
	code := func(c string, answer string) [][2]string { return append(ids(answer), [2]string{"X-App-Code", c}) }
	q := "/app/x?q=" + cQuery
	requests := []hygieneRequest{
		{name: "allow AppCode", path: q, headers: code(cPlainCode, "allow"), status: 200},
		{name: "allow hashed AppCode", path: q, headers: code(cHashedCode, "allow"), status: 200},
		{name: "allow signed", path: q, headers: ids("allow"), signKey: "hyg-good", signSec: cSecret, status: 200},
		{name: "bad signature", path: q, headers: ids("allow"), signKey: "hyg-good", signSec: cWrongSecret, status: 401, code: "AUTH_FAILURE"},
		{name: "unknown appKey", path: q, headers: ids("allow"), signKey: "hyg-nobody", signSec: cSecret, status: 401, code: "AUTH_FAILURE"},
		{name: "wrong AppCode", path: q, headers: code(cWrongCode, "allow"), status: 401, code: "AUTH_FAILURE"},
		{name: "AppCode as Apig header", path: q, headers: append(ids("allow"), [2]string{"X-Apig-AppCode", cWrongCode}), status: 401, code: "AUTH_FAILURE"},
		{name: "too short AppCode", path: q, headers: code(cShortCode, "allow"), status: 401, code: "AUTH_FAILURE"},
		{name: "disabled by AppCode", path: q, headers: code(cDisabledCode, "allow"), status: 401, code: "AUTH_FAILURE"},
		{name: "disabled signed", path: q, headers: ids("allow"), signKey: "hyg-disabled", signSec: cDisabledSec, status: 401, code: "AUTH_FAILURE"},
		{name: "expired", path: q, headers: code(cExpiredCode, "allow"), status: 401, code: "AUTH_FAILURE"},
		{name: "invalid Secret signed", path: q, headers: ids("allow"), signKey: "hyg-short", signSec: cShortSecret, status: 401, code: "AUTH_FAILURE"},
		{name: "not bound", path: q, headers: code(cOtherCode, "allow"), status: 403, code: "UNAUTHORIZED"},
		{name: "unlabelled Secret", path: q, headers: ids("allow"), signKey: "hyg-unlabelled", signSec: cUnlabelled, status: 401, code: "AUTH_FAILURE"},
		{name: "no credential", path: q, headers: ids("allow"), status: 401, code: "AUTH_HEADER_MISSING"},
		{name: "repeated credentials", path: q, headers: append(code(cPlainCode, "allow"), [2]string{"X-Apig-AppCode", cHashedCode}), status: 400, code: "REQUEST_PARAMETERS_FAILURE"},
		{name: "bad path", path: "/app/%2e%2e/x?q=" + cQuery, headers: code(cPlainCode, "allow"), status: 400, code: "REQUEST_PARAMETERS_FAILURE"},
		{name: "no route", path: "/nowhere?q=" + cQuery, headers: code(cPlainCode, "allow"), status: 404, code: "ROUTE_NOT_FOUND"},
		{name: "identity missing", path: "/app/x", headers: code(cPlainCode, "allow"), status: 401, code: "AUTHORIZER_IDENTITIES_FAILURE"},
		{name: "authorizer denies", path: q, headers: code(cPlainCode, "deny"), status: 403, code: "ACCESS_DENIED"},
		{name: "authorizer 500", path: q, headers: code(cPlainCode, "error"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "authorizer 403", path: q, headers: code(cPlainCode, "forbidden"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "authorizer unknown", path: q, headers: code(cPlainCode, "unknown"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "malformed JSON", path: q, headers: code(cPlainCode, "malformed"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "bad context key", path: q, headers: code(cPlainCode, "badkey"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "control character", path: q, headers: code(cPlainCode, "control"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "bad status", path: q, headers: code(cPlainCode, "status"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "bad wrapped body", path: q, headers: code(cPlainCode, "wrapped"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "redirect", path: q, headers: code(cPlainCode, "redirect"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "oversized answer", path: q, headers: code(cPlainCode, "huge"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "timeout", path: q, headers: code(cPlainCode, "slow"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "unreachable", path: "/dead", headers: code(cPlainCode, "allow"), status: 500, code: "AUTHORIZER_FAILURE"},
		{name: "userData too long", path: "/broken", headers: code(cPlainCode, "allow"), status: 500, code: "AUTHORIZER_CONF_FAILURE"},
		{name: "userData key missing", path: "nokey.hyg.example.com/", headers: ids("allow"), status: 500, code: "AUTHORIZER_CONF_FAILURE"},
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	authz := authv3.NewAuthorizationClient(conn)
	for _, tt := range requests {
		host, target := "hyg.example.com", tt.path
		if !strings.HasPrefix(target, "/") {
			host, target, _ = strings.Cut(target, "/")
			target = "/" + target
		}
		headers := tt.headers
		if tt.signKey != "" {
			headers = append(signedHeaders(t, tt.signKey, tt.signSec, "GET", host, target), headers...)
		}

		// Forward-auth, as Traefik asks.
		req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/auth", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Host", host)
		req.Header.Set("X-Forwarded-Uri", target)
		for _, h := range headers {
			req.Header.Add(h[0], h[1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var hdr strings.Builder
		_ = resp.Header.Write(&hdr)
		sources["forward-auth "+tt.name] = resp.Status + "\n" + hdr.String() + "\n" + string(body)
		if resp.StatusCode != tt.status || resp.Header.Get("X-Portcullis-Error") != tt.code {
			t.Errorf("%s over HTTP: %s %q, want %d %q: %s", tt.name, resp.Status, resp.Header.Get("X-Portcullis-Error"), tt.status, tt.code, body)
		}

		// ext_authz, as Envoy asks.
		hm := map[string]string{":authority": host, ":method": "GET", ":path": target}
		for _, h := range headers {
			hm[strings.ToLower(h[0])] = h[1]
		}
		cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3"}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Headers: hm, Path: target, Host: host,
			}},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cresp, err := authz.Check(ctx, cr)
		cancel()
		if err != nil {
			t.Fatalf("%s over gRPC: %v", tt.name, err)
		}
		sources["ext_authz "+tt.name] = cresp.String()
		if allowed := cresp.GetOkResponse() != nil; allowed != (tt.status == 200) {
			t.Errorf("%s over gRPC: %v", tt.name, cresp)
		}
	}
	if _, ok := seenUserData.Load(cUserData); !ok {
		t.Error("the authorizer never received the user_data from the Secret")
	}

	// A broken edit: the file source keeps the last good policy and logs why.
	if err := os.WriteFile(filepath.Join(dir, "40-bad.yaml"), []byte(badFile), 0o600); err != nil {
		t.Fatal(err)
	}
	_, loadErr := controllers.LoadDir(dir)
	if loadErr == nil {
		t.Fatal("the bad file loads")
	}
	sources["LoadDir error"] = loadErr.Error()
	for _, want := range badFileProblems {
		if !strings.Contains(loadErr.Error(), want) {
			t.Errorf("the load error does not name %s:\n%v", want, loadErr)
		}
	}
	var le *controllers.LoadError
	if !errors.As(loadErr, &le) {
		t.Errorf("%T is not a *LoadError", loadErr)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "Keeping the last good policy") {
		if time.Now().After(deadline) {
			t.Fatal("the file source never reported the bad file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, sources["/metrics"] = get("http://" + metricsAddr + "/metrics")
	_, sources["/healthz"] = get("http://" + healthAddr + "/healthz")
	_, sources["/readyz"] = get("http://" + healthAddr + "/readyz")
	if !strings.Contains(sources["/metrics"], "portcullis_decisions_total") {
		t.Errorf("the scrape has no decision metrics:\n%s", sources["/metrics"])
	}
	shutdown()
	log := stderr.stop()
	sources["serve log"] = log
	for _, want := range []string{`"msg":"Decision"`, `"code":"AUTHORIZER_FAILURE"`, `"msg":"Keeping the last good policy"`, `"msg":"Object not ready"`, `"msg":"Built snapshot"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s; the capture is incomplete:\n%s", want, log)
		}
	}

	// The CLI, with good and bad input.
	if err := os.Remove(filepath.Join(dir, "40-bad.yaml")); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(cSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(badDir, "bad.yaml"), []byte(badFile), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := []struct {
		name string
		run  func(io.Writer) error
	}{
		{"check allow --describe", func(w io.Writer) error {
			_, err := check([]string{"--files", dir, "--describe", "--url", "http://hyg.example.com/app?q=" + cQuery, "-H", "X-App-Code: " + cPlainCode, "-H", "token: " + token("allow"), "-H", "Cookie: sid=" + cCookie, "--authorizer-answer", "allow"}, w)
			return err
		}},
		{"check hashed AppCode", func(w io.Writer) error {
			allowed, err := check([]string{"--files", dir, "--url", "http://hyg.example.com/app?q=" + cQuery, "-H", "X-App-Code: " + cHashedCode, "-H", "token: " + token("allow"), "-H", "Cookie: sid=" + cCookie, "--authorizer-answer", "allow"}, w)
			if err == nil && !allowed {
				err = errors.New("the hashed AppCode is refused")
			}
			return err
		}},
		{"check wrong AppCode", func(w io.Writer) error {
			_, err := check([]string{"--files", dir, "--url", "http://hyg.example.com/app", "-H", "X-App-Code: " + cWrongCode}, w)
			return err
		}},
		{"check calls the authorizer", func(w io.Writer) error {
			_, err := check([]string{"--files", dir, "--url", "http://hyg.example.com/app?q=" + cQuery, "-H", "X-App-Code: " + cPlainCode, "-H", "token: " + token("error"), "-H", "Cookie: sid=" + cCookie}, w)
			return err
		}},
		{"check malformed header", func(w io.Writer) error {
			_, err := check([]string{"--files", dir, "--url", "http://hyg.example.com/app", "-H", "X-App-Code " + cCLIHeader}, w)
			return err
		}},
		{"check bad directory", func(w io.Writer) error {
			_, err := check([]string{"--files", badDir, "--url", "http://hyg.example.com/app", "-H", "X-App-Code: " + cPlainCode}, w)
			return err
		}},
		{"sign", func(w io.Writer) error {
			return sign([]string{"--app-key", "hyg-good", "--app-secret-file", secretFile, "--url", "http://hyg.example.com/app"}, w)
		}},
		{"sign --curl", func(w io.Writer) error {
			return sign([]string{"--app-key", "hyg-good", "--app-secret-file", secretFile, "--curl", "--url", "http://hyg.example.com/app"}, w)
		}},
		{"sign bad URL", func(w io.Writer) error {
			return sign([]string{"--app-key", "hyg-good", "--app-secret-file", secretFile, "--url", "hyg.example.com/app"}, w)
		}},
		{"sign bad header", func(w io.Writer) error {
			return sign([]string{"--app-key", "hyg-good", "--app-secret-file", secretFile, "--url", "http://hyg.example.com/app", "-H", "X-Extra " + cCLIHeader}, w)
		}},
		{"sign no key", func(w io.Writer) error {
			return sign([]string{"--app-secret-file", secretFile, "--url", "http://hyg.example.com/app"}, w)
		}},
	}
	for _, c := range cli {
		var out bytes.Buffer
		err := c.run(&out)
		text := out.String()
		if err != nil {
			text += "\nportcullis: " + err.Error() // as main prints it
		}
		sources["CLI "+c.name] = text
	}
	for _, bad := range []string{"check malformed header", "check bad directory", "sign bad URL", "sign bad header", "sign no key"} {
		if !strings.Contains(sources["CLI "+bad], "portcullis: ") {
			t.Errorf("%s did not fail:\n%s", bad, sources["CLI "+bad])
		}
	}
	if !strings.Contains(sources["CLI check allow --describe"], "decision: ALLOW") {
		t.Errorf("check did not allow:\n%s", sources["CLI check allow --describe"])
	}

	canaries := []string{cSecret, cPlainCode, cHashedCode, canary.Digest(cHashedCode), canary.Digest(cPlainCode), cShortSecret, cShortCode,
		cBadHash, cNoKeySecret, cDisabledSec, cDisabledCode, cExpiredCode, cOtherCode, cWrongCode, cWrongSecret,
		cUserData, cLongUserData, cUnlabelled, cQuery, cCookie, cBadB64, "=" + cNumeric, cDupKey, cSeparator, cYAMLError,
		cUnknownFld, cCLIHeader}
	for _, a := range []string{"allow", "deny", "error", "forbidden", "unknown", "malformed", "badkey", "control", "status", "wrapped", "redirect", "huge", "slow"} {
		canaries = append(canaries, token(a))
	}
	for _, l := range canary.Leaks(canaries, sources) {
		t.Error(l)
	}
}
