//go:build e2e

// Package e2e runs Portcullis the way a cluster add-on runs, end to end: a real
// kube-apiserver and etcd (envtest, KUBEBUILDER_ASSETS), the CRDs and config/samples applied
// with kubectl, the portcullis binary out of cluster with a kubeconfig, and real HTTP traffic
// through nginx's auth_request in front of an upstream that echoes the headers it received.
//
// It needs nginx and kubectl on PATH and KUBEBUILDER_ASSETS; run it with
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s go test -tags e2e -count=1 -v ./test/e2e/
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The sample objects (config/samples) and what the sample authorizer accepts.
const (
	host      = "api.example.com"
	appCode   = "5f0c8a1e7b3d4c29a6e1f08b2d7c3e95mobileapp"
	appKey    = "mobile-app-key-0001"
	appSecret = "mobile-app-secret-0001-change-me"
	token     = "demo-token"
	testParam = "demo"
	credName  = "shop/mobile-app"
	// The authorizer's context: {"user":"user-42","tier":"gold","checked":true}.
	user = "user-42"
)

// revocationBudget is how long a deleted credential may keep working.
const revocationBudget = time.Second

var root = filepath.Join("..", "..")

// world is everything the test started.
type world struct {
	dir        string
	kubeconfig string
	portcullis *proc
	healthURL  string
	nginxURL   string
	plainURL   string
	upstream   *echo
	client     *http.Client
}

func TestNginxEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	w := setUp(ctx, t)

	t.Run("allow reaches the upstream with Portcullis' headers, not the client's", func(t *testing.T) {
		h := http.Header{}
		h.Set("X-App-Code", appCode)
		h.Set("token", token)
		// Spoofs of every header the upstream trusts.
		h.Set("X-Portcullis-Credential", "shop/admin")
		h.Set("X-Portcullis-App-Key", "admin-key")
		h.Set("X-Portcullis-Degraded", "true")
		h.Set("X-User-Id", "root")
		h.Set("X-Auth-User", "root")
		h.Set("X-Auth-Tier", "platinum")
		got := w.allowed(t, "GET", "/orders/7?test="+testParam, h)
		want := map[string]string{
			"X-Portcullis-Credential": credName,
			"X-Portcullis-App-Key":    appKey,
			"X-User-Id":               user,
			"X-Auth-User":             user,
			"X-Auth-Tier":             "gold",
			"X-Auth-Checked":          "true",
			"Token":                   token,
		}
		for name, v := range want {
			if vs := got.Header.Values(name); len(vs) != 1 || vs[0] != v {
				t.Errorf("upstream got %s = %q, want exactly %q", name, vs, v)
			}
		}
		for _, name := range []string{"X-App-Code", "X-Apig-Appcode", "X-Portcullis-Degraded"} {
			if vs := got.Header.Values(name); len(vs) > 0 {
				t.Errorf("upstream got %s = %q, want none", name, vs)
			}
		}
		if got.Host != host || got.URI != "/orders/7?test="+testParam {
			t.Errorf("upstream got %s %s, want %s /orders/7?test=%s", got.Host, got.URI, host, testParam)
		}
	})

	t.Run("the AppCode alias is allowed and not forwarded either", func(t *testing.T) {
		h := http.Header{}
		h.Set("X-Apig-AppCode", appCode)
		h.Set("token", token)
		got := w.allowed(t, "GET", "/orders/7?test="+testParam, h)
		if v := got.Header.Get("X-Portcullis-Credential"); v != credName {
			t.Errorf("upstream got X-Portcullis-Credential %q, want %q", v, credName)
		}
		if vs := got.Header.Values("X-Apig-Appcode"); len(vs) > 0 {
			t.Errorf("upstream got X-Apig-AppCode %q, want none", vs)
		}
	})

	t.Run("a signed GET is allowed", func(t *testing.T) {
		h := w.sign(ctx, t, "GET", "http://"+host+"/orders/7?test="+testParam, "token: "+token)
		got := w.allowed(t, "GET", "/orders/7?test="+testParam, h)
		if v := got.Header.Get("X-Portcullis-Credential"); v != credName {
			t.Errorf("upstream got X-Portcullis-Credential %q, want %q", v, credName)
		}
		if v := got.Header.Get("X-User-Id"); v != user {
			t.Errorf("upstream got X-User-Id %q, want %q", v, user)
		}
	})

	t.Run("the anonymous route is allowed", func(t *testing.T) {
		got := w.allowed(t, "GET", "/healthz", nil)
		if vs := got.Header.Values("X-Portcullis-Credential"); len(vs) > 0 {
			t.Errorf("upstream got X-Portcullis-Credential %q on an anonymous route", vs)
		}
	})

	t.Run("denials carry their status and error_code", func(t *testing.T) {
		good := func(kv ...string) http.Header {
			h := http.Header{}
			h.Set("X-App-Code", appCode)
			h.Set("token", token)
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == "" {
					h.Del(kv[i])
				} else {
					h.Set(kv[i], kv[i+1])
				}
			}
			return h
		}
		for _, tc := range []struct {
			name, method, uri string
			header            http.Header
			status            int
			code              string
		}{
			{"no credential", "GET", "/orders/7?test=demo", good("X-App-Code", ""), 401, "AUTH_HEADER_MISSING"},
			{"wrong AppCode", "GET", "/orders/7?test=demo", good("X-App-Code", "wrong-code-wrong-code-wrong-code-00"), 401, "AUTH_FAILURE"},
			{"wrong token", "GET", "/orders/7?test=demo", good("token", "wrong"), 403, "ACCESS_DENIED"},
			{"identity source missing", "GET", "/orders/7", good(), 401, "AUTHORIZER_IDENTITIES_FAILURE"},
			{"method not bound", "DELETE", "/orders/7?test=demo", good(), 404, "ROUTE_NOT_FOUND"},
			{"no route", "GET", "/nothing-here", good(), 404, "ROUTE_NOT_FOUND"},
			{"ambiguous path", "GET", "/orders/7//x?test=demo", good(), 400, "REQUEST_PARAMETERS_FAILURE"},
			{"repeated credential headers", "GET", "/orders/7?test=demo", good("X-Apig-AppCode", appCode), 400, "REQUEST_PARAMETERS_FAILURE"},
			// Portcullis reads X-Forwarded-Method/-Uri before nginx's X-Original-*: the nginx
			// config must keep a client from choosing what is decided.
			{"spoofed forward-auth headers", "GET", "/orders/7?test=demo", good("X-App-Code", "", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/healthz"), 401, "AUTH_HEADER_MISSING"},
			{"spoofed original URI", "GET", "/orders/7?test=demo", good("X-App-Code", "", "X-Original-URI", "/healthz"), 401, "AUTH_HEADER_MISSING"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w.denied(t, tc.method, tc.uri, tc.header, tc.status, tc.code)
			})
		}
	})

	t.Run("without an error page nginx keeps only 401 and 403", func(t *testing.T) {
		h := http.Header{}
		h.Set("X-App-Code", appCode)
		h.Set("token", token)
		r, err := w.doAt(w.plainURL, "GET", "/orders/7?test="+testParam, h)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusOK {
			t.Fatalf("allowed request: %d %s, want 200", r.status, r.raw)
		}
		h.Del("X-App-Code")
		h.Set("X-Forwarded-Method", "GET")
		h.Set("X-Forwarded-Uri", "/healthz")
		for _, tc := range []struct {
			name, uri  string
			header     http.Header
			status     int // what nginx answers
			portcullis int // what Portcullis said
		}{
			{"AUTH_HEADER_MISSING", "/orders/7?test=demo", h, 401, 401},
			{"ACCESS_DENIED", "/orders/7?test=demo", http.Header{"X-App-Code": {appCode}, "Token": {"wrong"}}, 403, 403},
			{"ROUTE_NOT_FOUND", "/nothing-here", nil, 500, 404},
			{"REQUEST_PARAMETERS_FAILURE", "/orders/7//x?test=demo", nil, 500, 400},
		} {
			before := w.upstream.hits.Load()
			r, err := w.doAt(w.plainURL, "GET", tc.uri, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tc.status || w.upstream.hits.Load() != before {
				t.Errorf("%s (%d from Portcullis): nginx answered %d, want %d without reaching the upstream", tc.name, tc.portcullis, r.status, tc.status)
			}
			if json.Valid(r.raw) {
				t.Errorf("%s: nginx passed a JSON body on: %s", tc.name, r.raw)
			}
			if tc.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: nginx dropped WWW-Authenticate", tc.name)
			}
		}
	})

	if t.Failed() {
		return // no revocation to measure when allows did not work
	}

	t.Run("deleting the credential revokes it within a second", func(t *testing.T) {
		h := http.Header{}
		h.Set("X-App-Code", appCode)
		h.Set("token", token)
		w.allowed(t, "GET", "/orders/7?test="+testParam, h)

		// Poll every 10ms from before kubectl starts until the first denial.
		type denial struct {
			at       time.Time
			resp     *response
			err      error
			requests int
		}
		stop := make(chan struct{})
		first := make(chan denial, 1)
		go func() {
			var d denial
			for {
				d.requests++
				r, err := w.do("GET", "/orders/7?test="+testParam, h)
				if err != nil || r.status != http.StatusOK {
					d.at, d.resp, d.err = time.Now(), r, err
					first <- d
					return
				}
				select {
				case <-stop:
					first <- d
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		started := time.Now()
		// --wait=false: kubectl returns when the API server has acknowledged the delete.
		w.kubectl(ctx, t, "delete", "credential", "mobile-app", "-n", "shop", "--wait=false")
		deleted := time.Now()
		var d denial
		select {
		case d = <-first:
		case <-time.After(10 * time.Second):
			close(stop)
			d = <-first
		}
		if d.err != nil {
			t.Fatal(d.err)
		}
		if d.resp == nil {
			t.Fatalf("still allowed 10s after `kubectl delete credential` returned (%d requests)", d.requests)
		}
		took := d.at.Sub(deleted)
		when := fmt.Sprintf("%v after `kubectl delete credential` returned", took.Round(time.Millisecond))
		if took < 0 {
			when = fmt.Sprintf("%v before `kubectl delete credential` returned", (-took).Round(time.Millisecond))
		}
		msg := fmt.Sprintf("revocation: first denial %s, %v after kubectl was started (%d requests, one every 10ms)",
			when, d.at.Sub(started).Round(time.Millisecond), d.requests)
		t.Log(msg)
		fmt.Println(msg) // a plain line in the CI log, easy to find (go test -v shows stdout)
		if took > revocationBudget {
			t.Errorf("revocation took %v, want under %v", took, revocationBudget)
		}
		// The sample binding names the credential, so the binding now refers to a missing
		// credential: AUTHORIZER_CONF_FAILURE (DESIGN.md §3), and it stays so.
		if d.resp.status != http.StatusInternalServerError || d.resp.body.ErrorCode != "AUTHORIZER_CONF_FAILURE" {
			t.Errorf("first denial: %d %s, want 500 AUTHORIZER_CONF_FAILURE", d.resp.status, d.resp.raw)
		}
		w.denied(t, "GET", "/orders/7?test="+testParam, h, http.StatusInternalServerError, "AUTHORIZER_CONF_FAILURE")
	})

	t.Run("nginx fails closed when Portcullis is down", func(t *testing.T) {
		w.allowed(t, "GET", "/healthz", nil)
		w.portcullis.stop()
		before := w.upstream.hits.Load()
		r, err := w.do("GET", "/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusInternalServerError {
			t.Errorf("with Portcullis down: %d %s, want 500", r.status, r.raw)
		}
		if n := w.upstream.hits.Load(); n != before {
			t.Errorf("with Portcullis down the upstream was reached")
		}
	})
}

// setUp starts the cluster, Portcullis, the sample authorizer, the upstream and nginx.
func setUp(ctx context.Context, t *testing.T) *world {
	t.Helper()
	began := time.Now()
	for _, tool := range []string{"nginx", "kubectl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH: the e2e test drives a real %s (`make test-e2e` installs what is missing)", tool, tool)
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make envtest` and point it at bin/k8s")
	}
	w := &world{dir: t.TempDir()}
	w.client = &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// The binaries build while the control plane starts.
	var wg sync.WaitGroup
	var buildErr error
	wg.Go(func() { buildErr = build(ctx, w.dir, "./cmd/portcullis", "./hack/sample-authorizer") })
	env := &envtest.Environment{}
	if _, err := env.Start(); err != nil {
		_ = env.Stop() // Start leaves what it started running when a later step fails
		t.Fatalf("start kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop envtest: %v", err)
		}
	})
	w.kubeconfig = filepath.Join(w.dir, "kubeconfig")
	if err := os.WriteFile(w.kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	t.Logf("control plane up and binaries built in %v", time.Since(began).Round(time.Millisecond))

	// What an operator does: CRDs, a namespace, the samples.
	w.kubectl(ctx, t, "apply", "-f", filepath.Join(root, "config", "crd", "bases"))
	w.kubectl(ctx, t, "wait", "--for", "condition=established", "--timeout=30s",
		"crd/credentials.auth.portcullis.dev", "crd/customauthorizers.auth.portcullis.dev", "crd/apibindings.auth.portcullis.dev")
	w.kubectl(ctx, t, "create", "namespace", "shop")
	w.kubectl(ctx, t, "apply", "-f", filepath.Join(root, "config", "samples"))

	// The samples' authorizer URL is the one `make run` uses; move it to a free port.
	authzAddr := freeAddr(t)
	start(t, w.dir, "sample-authorizer", filepath.Join(w.dir, "sample-authorizer"),
		"-addr", authzAddr, "-token", token, "-test", testParam)
	w.kubectl(ctx, t, "patch", "customauthorizer", "token-check", "-n", "shop", "--type=merge",
		"-p", fmt.Sprintf(`{"spec":{"url":"http://%s/verify"}}`, authzAddr))
	waitHTTP(ctx, t, "sample authorizer", "http://"+authzAddr+"/", func(int) bool { return true })

	httpAddr, healthAddr := freeAddr(t), freeAddr(t)
	w.portcullis = start(t, w.dir, "portcullis", filepath.Join(w.dir, "portcullis"), "serve",
		"--source=kubernetes", "--kubeconfig="+w.kubeconfig, "--log-development",
		"--grpc-addr="+freeAddr(t), "--http-addr="+httpAddr,
		"--metrics-addr="+freeAddr(t), "--health-addr="+healthAddr)
	w.healthURL = "http://" + healthAddr
	waitHTTP(ctx, t, "portcullis /readyz", w.healthURL+"/readyz", func(s int) bool { return s == http.StatusOK })

	w.upstream = newEcho(t)
	listen, plainListen := freeAddr(t), freeAddr(t)
	conf := filepath.Join(w.dir, "nginx.conf")
	writeTemplate(t, filepath.Join("testdata", "nginx.conf.tmpl"), conf, map[string]string{
		"Dir": w.dir, "Listen": listen, "PlainListen": plainListen, "Portcullis": httpAddr, "Upstream": w.upstream.addr,
	})
	nginxArgs := []string{"-p", w.dir, "-c", conf, "-e", filepath.Join(w.dir, "error.log")}
	if out, err := exec.CommandContext(ctx, "nginx", append([]string{"-t"}, nginxArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	start(t, w.dir, "nginx", "nginx", nginxArgs...)
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, filepath.Join(w.dir, "error.log"))
		}
	})
	w.nginxURL, w.plainURL = "http://"+listen, "http://"+plainListen
	waitHTTP(ctx, t, "nginx", w.nginxURL+"/healthz", func(s int) bool { return s == http.StatusOK })
	waitHTTP(ctx, t, "nginx", w.plainURL+"/healthz", func(s int) bool { return s == http.StatusOK })
	t.Logf("cluster, Portcullis, authorizer, upstream and nginx ready in %v", time.Since(began).Round(time.Millisecond))
	return w
}

// build compiles the packages into dir.
func build(ctx context.Context, dir string, pkgs ...string) error {
	for _, pkg := range pkgs {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, filepath.Base(pkg)), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return nil
}

// kubectl runs kubectl against the test cluster and fails the test when it fails.
func (w *world) kubectl(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", w.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sign runs `portcullis sign` and returns the headers it prints.
func (w *world) sign(ctx context.Context, t *testing.T, method, url string, headers ...string) http.Header {
	t.Helper()
	args := []string{"sign", "--app-key", appKey, "--method", method, "--url", url}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(w.dir, "portcullis"), args...)
	cmd.Env = append(os.Environ(), "PORTCULLIS_APP_SECRET="+appSecret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("portcullis sign: %v", err)
	}
	h := http.Header{}
	for line := range strings.Lines(string(out)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			t.Fatalf("portcullis sign printed %q", line)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	if !strings.HasPrefix(h.Get("Authorization"), "SDK-HMAC-SHA256 ") {
		t.Fatalf("portcullis sign printed no Authorization: %s", out)
	}
	return h
}

// denyBody is the JSON of a deny (DESIGN.md §3).
type denyBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

// response is what a client got from nginx.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   denyBody
}

// do sends one request to nginx for host api.example.com.
func (w *world) do(method, uri string, h http.Header) (*response, error) {
	return w.doAt(w.nginxURL, method, uri, h)
}

// doAt sends one request to the nginx server at base.
func (w *world) doAt(base, method, uri string, h http.Header) (*response, error) {
	req, err := http.NewRequest(method, base+uri, nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	for k, vs := range h {
		req.Header[k] = vs
	}
	res, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	r := &response{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r, nil
}

// allowed sends a request that must reach the upstream, and returns what the upstream saw.
func (w *world) allowed(t *testing.T, method, uri string, h http.Header) seen {
	t.Helper()
	before := w.upstream.hits.Load()
	r, err := w.do(method, uri, h)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s, want 200 from the upstream", method, uri, r.status, r.raw)
	}
	if w.upstream.hits.Load() != before+1 {
		t.Fatalf("%s %s: 200 but the upstream was not reached once", method, uri)
	}
	var s seen
	if err := json.Unmarshal(r.raw, &s); err != nil {
		t.Fatalf("%s %s: upstream answer %s: %v", method, uri, r.raw, err)
	}
	return s
}

// denied sends a request that must be denied with status and code without reaching the
// upstream.
func (w *world) denied(t *testing.T, method, uri string, h http.Header, status int, code string) {
	t.Helper()
	before := w.upstream.hits.Load()
	r, err := w.do(method, uri, h)
	if err != nil {
		t.Fatal(err)
	}
	if w.upstream.hits.Load() != before {
		t.Errorf("%s %s: the upstream was reached", method, uri)
	}
	if r.status != status || r.body.ErrorCode != code {
		t.Fatalf("%s %s: %d %s, want %d with error_code %s", method, uri, r.status, r.raw, status, code)
	}
	if got := r.header.Get("X-Portcullis-Error"); got != code {
		t.Errorf("X-Portcullis-Error = %q, want %q", got, code)
	}
	if id := r.header.Get("X-Request-Id"); id == "" || r.body.RequestID != id {
		t.Errorf("request_id %q, want the X-Request-Id nginx sent Portcullis and the client (%q)", r.body.RequestID, id)
	}
	if r.body.ErrorMsg == "" {
		t.Errorf("empty error_msg in %s", r.raw)
	}
	if status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate")
	}
}

// seen is what the upstream echoes: the request it received.
type seen struct {
	Method string      `json:"method"`
	Host   string      `json:"host"`
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
}

// echo is the upstream: it answers every request with the request as JSON.
type echo struct {
	addr string
	hits atomic.Int64
}

func newEcho(t *testing.T) *echo {
	e := &echo{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(seen{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	e.addr = srv.Listener.Addr().String()
	return e
}

// proc is a child process with its output in a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	once sync.Once
}

// start runs a command until the test ends; its output goes to DIR/NAME.log, shown when the
// test fails.
func start(t *testing.T, dir, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			dump(t, p.log)
		}
	})
	return p
}

// stop asks the process to exit (SIGTERM) and kills it after 5 seconds.
func (p *proc) stop() {
	p.once.Do(func() {
		_ = terminate(p.cmd.Process)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func dump(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > 8<<10 {
		b = append([]byte("...\n"), b[len(b)-8<<10:]...)
	}
	t.Logf("---- %s ----\n%s", filepath.Base(path), bytes.TrimSpace(b))
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitHTTP polls url until ok accepts its status, for at most 30 seconds.
func waitHTTP(ctx context.Context, t *testing.T, what, url string, ok func(status int) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = host
		if res, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if ok(res.StatusCode) {
				return
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready at %s: %s", what, url, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func writeTemplate(t *testing.T, src, dst string, data any) {
	t.Helper()
	tmpl, err := template.ParseFiles(src)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
