package controlplane

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
	"github.com/portcullis-dev/portcullis/authz/observe"
	"github.com/portcullis-dev/portcullis/controllers"
)

// probeEvery is the source's API server probe interval in these tests (10s in production).
const probeEvery = 100 * time.Millisecond

// instance is one Portcullis replica in process: the manager with the Kubernetes source, the
// ext_authz gRPC server over loopback, /healthz and /readyz, and /metrics.
type instance struct {
	policy  *controllers.Policy
	check   authv3.AuthorizationClient
	health  healthpb.HealthClient
	probes  *httptest.Server
	metrics *httptest.Server
	stop    func()
}

// startInstance starts a replica against cfg; it stops when the test ends or on stop.
func startInstance(t *testing.T, cfg *rest.Config) *instance {
	t.Helper()
	log := ctrl.Log.WithName(t.Name())
	policy := controllers.NewPolicy(log.WithName("policy"))
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 controllers.Scheme(),
		Cache:                  controllers.WithSourceHealth(controllers.CacheOptions(""), policy, probeEvery),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Several replicas live in this one process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	if _, err := controllers.SetupKubernetes(mgr, policy, ""); err != nil {
		t.Fatalf("controllers: %v", err)
	}

	// Metrics: one registry per replica here; `serve` uses controller-runtime's.
	reg := prometheus.NewRegistry()
	reg.MustRegister(controllers.FreshnessCollector(policy))
	authz := authorizer.New(authorizer.Options{})
	obs, err := observe.New(reg, authz, policy.Snapshot, log, false)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	eng := &engine.Engine{Snapshot: policy.Snapshot, Authorizer: authz, MaxClockSkew: 15 * time.Minute, MaxBodyBytes: 64 << 10}
	gs, health := extauthz.NewGRPCServer(&extauthz.Server{Engine: eng, Observe: obs.For("grpc")})
	health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	conn := enginetest.Serve(t, gs)

	in := &instance{
		policy:  policy,
		check:   authv3.NewAuthorizationClient(conn),
		health:  healthpb.NewHealthClient(conn),
		probes:  httptest.NewServer(controllers.ProbeHandler(policy)),
		metrics: httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	healthDone := make(chan struct{})
	go func() {
		// As `serve` does: the gRPC health service follows readiness.
		defer close(healthDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if policy.Ready() {
					health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
					return
				}
			}
		}
	}()
	stopped := false
	in.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-mgrDone; err != nil {
			t.Errorf("manager: %v", err)
		}
		<-healthDone
		in.probes.Close()
		in.metrics.Close()
		authz.CloseIdleConnections()
	}
	t.Cleanup(in.stop)
	return in
}

func ptr[T any](v T) *T { return &v }

// readyz returns the status code of GET /readyz.
func (in *instance) readyz(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(in.probes.URL + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// serving returns the gRPC health status.
func (in *instance) serving(t *testing.T) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := in.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	return r.GetStatus()
}

// metric returns the value of an unlabelled metric on /metrics, or an error when it is
// missing.
func (in *instance) metric(t *testing.T, name string) (float64, error) {
	t.Helper()
	resp, err := http.Get(in.metrics.URL)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s is not exposed", name)
}

// freshness returns portcullis_source_up and portcullis_snapshot_stale_seconds.
func (in *instance) freshness(t *testing.T) (up, stale float64) {
	t.Helper()
	up, err := in.metric(t, "portcullis_source_up")
	if err != nil {
		t.Fatal(err)
	}
	stale, err = in.metric(t, "portcullis_snapshot_stale_seconds")
	if err != nil {
		t.Fatal(err)
	}
	return up, stale
}

// request is one row of a decision table: a GET with optional AppCode and token.
type request struct {
	host, path, appCode, token string
}

func (r request) String() string {
	return fmt.Sprintf("GET %s%s code=%.12q token=%q", r.host, r.path, r.appCode, r.token)
}

// decide asks the replica over gRPC and returns "<status> <code>", e.g. "200 ALLOW" or
// "403 ACCESS_DENIED".
func (in *instance) decide(t *testing.T, r request) string {
	t.Helper()
	headers := map[string]string{":authority": r.host, ":path": r.path, ":method": "GET"}
	if r.appCode != "" {
		headers["x-app-code"] = r.appCode
	}
	if r.token != "" {
		headers["token"] = r.token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := in.check.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "t", Method: "GET", Host: r.host, Path: r.path, Scheme: "https", Protocol: "HTTP/1.1", Headers: headers,
		}},
	}})
	if err != nil {
		t.Fatalf("Check %s: %v", r, err)
	}
	if resp.GetOkResponse() != nil {
		return "200 ALLOW"
	}
	d := resp.GetDeniedResponse()
	var body struct {
		ErrorCode string `json:"error_code"`
	}
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
		t.Fatalf("Check %s: deny body %q: %v", r, d.GetBody(), err)
	}
	return fmt.Sprintf("%d %s", d.GetStatus().GetCode(), body.ErrorCode)
}

// decideAll answers every row.
func (in *instance) decideAll(t *testing.T, rows []request) []string {
	t.Helper()
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = in.decide(t, r)
	}
	return out
}

// diff describes where got differs from want, or returns "".
func diff(rows []request, got, want []string) string {
	var b strings.Builder
	for i := range rows {
		if got[i] != want[i] {
			fmt.Fprintf(&b, "\n  %s: got %s, want %s", rows[i], got[i], want[i])
		}
	}
	return b.String()
}

// wantDecisions waits until the replica answers every row as want.
func (in *instance) wantDecisions(t *testing.T, within time.Duration, rows []request, want []string) time.Duration {
	t.Helper()
	return eventually(t, within, "decisions", func() error {
		if d := diff(rows, in.decideAll(t, rows), want); d != "" {
			return fmt.Errorf("differ:%s", d)
		}
		return nil
	})
}

// fixture is one namespace of policy: two AppCode credentials, an authorizer that allows
// token "good", a two-factor route, an app-only route and an anonymous route, all on one
// host of its own.
type fixture struct {
	ns, host     string
	code1, code2 string
	rows         []request
	want         []string // decisions for rows with everything enabled
}

// authorizerServer answers APIG-style: allow when the token header is "good".
func authorizerServer(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Headers map[string]string `json:"headers"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status := "deny"
		if in.Headers["token"] == "good" {
			status = "allow"
		}
		_, _ = fmt.Fprintf(w, `{"status":%q}`, status)
	}))
	t.Cleanup(s.Close)
	return s.URL + "/verify"
}

func newFixture(t *testing.T, authorizerURL string) *fixture {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cp-"}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		ns:    ns.Name,
		host:  ns.Name + ".example.com",
		code1: "APPCODE-ONE-" + strings.Repeat("A", 32) + "-" + ns.Name,
		code2: "APPCODE-TWO-" + strings.Repeat("B", 32) + "-" + ns.Name,
	}
	secret := func(name, key, code string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: map[string]string{authv1alpha1.CredentialSecretLabel: "true"}},
			StringData: map[string]string{"appKey": key + "-" + f.ns, "appCodes": code},
		}
	}
	cred := func(name, secretName string) *authv1alpha1.Credential {
		return &authv1alpha1.Credential{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec:       authv1alpha1.CredentialSpec{SecretRef: authv1alpha1.LocalObjectReference{Name: secretName}},
		}
	}
	binding := func(name, path string, spec authv1alpha1.APIBindingSpec) *authv1alpha1.APIBinding {
		spec.Hosts = []string{f.host}
		spec.Routes = []authv1alpha1.Route{{Path: path}}
		return &authv1alpha1.APIBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: spec}
	}
	appCode := []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthAppCode}
	objs := []client.Object{
		secret("one-keys", "one", f.code1),
		secret("two-keys", "two", f.code2),
		cred("one", "one-keys"),
		cred("two", "two-keys"),
		&authv1alpha1.CustomAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "token"},
			Spec: authv1alpha1.CustomAuthorizerSpec{
				URL:             authorizerURL,
				IdentitySources: []authv1alpha1.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}},
			},
		},
		binding("orders", "/orders", authv1alpha1.APIBindingSpec{
			App:              &authv1alpha1.AppAuth{Methods: appCode, Credentials: []string{"one"}},
			CustomAuthorizer: &authv1alpha1.LocalObjectReference{Name: "token"},
		}),
		binding("catalog", "/catalog", authv1alpha1.APIBindingSpec{
			App: &authv1alpha1.AppAuth{Methods: appCode, Credentials: []string{"one", "two"}},
		}),
		binding("public", "/public", authv1alpha1.APIBindingSpec{Anonymous: true}),
	}
	for _, o := range objs {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	h := f.host
	for _, row := range []struct {
		r    request
		want string
	}{
		{request{h, "/orders/7", f.code1, "good"}, "200 ALLOW"},
		{request{h, "/orders/7", f.code1, "bad"}, "403 ACCESS_DENIED"},
		{request{h, "/orders/7", f.code1, ""}, "401 AUTHORIZER_IDENTITIES_FAILURE"},
		{request{h, "/orders/7", f.code2, "good"}, "403 UNAUTHORIZED"},
		{request{h, "/orders/7", "", "good"}, "401 AUTH_HEADER_MISSING"},
		{request{h, "/orders/7", "APPCODE-WRONG-" + strings.Repeat("C", 32), "good"}, "401 AUTH_FAILURE"},
		{request{h, "/catalog", f.code1, ""}, "200 ALLOW"},
		{request{h, "/catalog/items", f.code2, ""}, "200 ALLOW"},
		{request{h, "/catalog", "", ""}, "401 AUTH_HEADER_MISSING"},
		{request{h, "/public/x", "", ""}, "200 ALLOW"},
		{request{h, "/nothing", f.code1, "good"}, "404 ROUTE_NOT_FOUND"},
		{request{"other." + h, "/catalog", f.code1, ""}, "404 ROUTE_NOT_FOUND"},
	} {
		f.rows = append(f.rows, row.r)
		f.want = append(f.want, row.want)
	}
	return f
}

// withCredentialOneDisabled returns the decisions once credential "one" is disabled.
func (f *fixture) withCredentialOneDisabled() []string {
	out := make([]string, len(f.want))
	for i, r := range f.rows {
		out[i] = f.want[i]
		if r.appCode == f.code1 && f.want[i] != "404 ROUTE_NOT_FOUND" {
			out[i] = "401 AUTH_FAILURE"
		}
	}
	return out
}

// notReady is every row answered as a replica without a snapshot answers.
func (f *fixture) notReady() []string {
	out := make([]string, len(f.rows))
	for i := range out {
		out[i] = "503 NOT_READY"
	}
	return out
}
