package observe_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/observe"
)

const appCode = "APPCODE-0001-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// TestMetricsAfterOneAllowAndOneDeny: every metric the docs name is exposed, with the
// labels a dashboard uses, and the decision log holds no credential material.
func TestMetricsAfterOneAllowAndOneDeny(t *testing.T) {
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"allow","context":{"user":"u-42"}}`))
	}))
	defer fn.Close()
	snap := enginetest.World(t, fn.URL+"/verify", time.Now())
	client := authorizer.New(authorizer.Options{})
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: client}

	var logs strings.Builder
	log := funcr.NewJSON(func(obj string) { logs.WriteString(obj + "\n") }, funcr.Options{})
	reg := prometheus.NewRegistry()
	obs, err := observe.New(reg, client, func() *compile.Snapshot { return snap }, log, true)
	if err != nil {
		t.Fatal(err)
	}
	observe := obs.For("grpc")
	for _, r := range []engine.Request{
		{Method: "GET", Authority: "api.example.com", Target: "/orders/7?test=secret-identity", Headers: []engine.Header{{Name: "x-app-code", Value: appCode}, {Name: "token", Value: "t0k-secret"}}},
		{Method: "GET", Authority: "api.example.com", Target: "/catalog", Headers: []engine.Header{{Name: "x-app-code", Value: "WRONG-" + appCode}}},
	} {
		start := time.Now()
		d := eng.Decide(context.Background(), &r)
		observe(&r, &d, time.Since(start))
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.String()
	}
	for _, name := range []string{
		"portcullis_decisions_total", "portcullis_decision_duration_seconds", "portcullis_authorizer_call_duration_seconds",
		"portcullis_authorizer_calls_total", "portcullis_authorizer_cache_hits_total", "portcullis_authorizer_cache_misses_total",
		"portcullis_authorizer_cache_evictions_total", "portcullis_authorizer_cache_entries", "portcullis_authorizer_degraded_total",
		"portcullis_snapshot_age_seconds", "portcullis_objects",
	} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s is not exposed", name)
		}
	}
	d := got["portcullis_decisions_total"]
	for _, want := range []string{`value:"shop/two-factor"`, `value:"ALLOW"`, `value:"shop/app-only"`, `value:"AUTH_FAILURE"`, `value:"ROUTE_NOT_FOUND"`} {
		if !strings.Contains(d, want) {
			t.Errorf("decisions_total lacks %s:\n%s", want, d)
		}
	}
	if !strings.Contains(got["portcullis_authorizer_calls_total"], `value:"allow"`) {
		t.Errorf("authorizer calls by outcome: %s", got["portcullis_authorizer_calls_total"])
	}

	out := logs.String()
	if strings.Count(out, `"msg":"Decision"`) != 2 || !strings.Contains(out, `"code":"AUTH_FAILURE"`) || !strings.Contains(out, `"credential":"shop/mobile-app"`) {
		t.Errorf("decision log:\n%s", out)
	}
	for _, secret := range []string{appCode, "t0k-secret", "secret-identity"} {
		if strings.Contains(out, secret) {
			t.Errorf("the decision log holds %q:\n%s", secret, out)
		}
	}
}
