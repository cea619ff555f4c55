package observe_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
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

// TestUnregister: an Observer's metrics leave the registry with Unregister, so that a second
// Observer can take their names; a New that cannot register them all leaves none behind.
func TestUnregister(t *testing.T) {
	reg := prometheus.NewRegistry()
	client := authorizer.New(authorizer.Options{})
	snap := func() *compile.Snapshot { return nil }
	names := func() []string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, mf := range mfs {
			ns = append(ns, mf.GetName())
		}
		return ns
	}

	first, err := observe.New(reg, client, snap, logr.Discard(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := observe.New(reg, client, snap, logr.Discard(), false); err == nil {
		t.Fatal("a second Observer registered the same metrics beside the first")
	}
	if len(names()) == 0 {
		t.Fatal("the failed New took the first Observer's metrics with it")
	}
	first.Unregister()
	if ns := names(); len(ns) != 0 {
		t.Fatalf("after Unregister the registry still holds %v", ns)
	}

	// Only the decision metrics are registered; the next ones collide.
	taken := prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_authorizer_cache_hits_total", Help: "Decisions answered from the authorizer result cache."})
	reg.MustRegister(taken)
	if _, err := observe.New(reg, client, snap, logr.Discard(), false); err == nil {
		t.Fatal("New registered metrics whose name was taken")
	}
	if ns := names(); len(ns) != 1 || ns[0] != "portcullis_authorizer_cache_hits_total" {
		t.Fatalf("a New that failed left %v registered", ns)
	}
	reg.Unregister(taken)

	second, err := observe.New(reg, client, snap, logr.Discard(), false)
	if err != nil {
		t.Fatalf("after Unregister: %v", err)
	}
	second.Unregister()
}

// TestDecisionCounts: decisions counted from many goroutines at once come out exactly, by
// binding and code; a binding's series exist once it has a decision; every deny code has a
// series without a binding from the start.
func TestDecisionCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := observe.New(reg, nil, nil, logr.Discard(), false)
	if err != nil {
		t.Fatal(err)
	}
	gathered := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "portcullis_decisions_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				out[labels["binding"]+" "+labels["code"]] = m.GetCounter().GetValue()
			}
		}
		return out
	}
	want := map[string]float64{}
	for _, c := range engine.Codes() {
		want[" "+c.String()] = 0
	}
	if got := gathered(); !maps.Equal(got, want) {
		t.Fatalf("before any decision: %v, want %v", got, want)
	}

	bindings := []*compile.Binding{nil, {ObjectRef: compile.ObjectRef{Ref: "a/one"}}, {ObjectRef: compile.ObjectRef{Ref: "b/two"}}}
	codes := []engine.Code{engine.CodeNone, engine.CodeAuthFailure, engine.CodeAccessDenied}
	observe := obs.For("grpc")
	const workers, each = 4, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				d := engine.Decision{Code: codes[(i+w)%len(codes)]}
				if b := bindings[i%len(bindings)]; b != nil {
					d.Route = &compile.Route{Binding: b}
				} else if d.Code == engine.CodeNone {
					d.Code = engine.CodeRouteNotFound // no allow without a route
				}
				observe(&engine.Request{}, &d, time.Microsecond)
			}
		})
	}
	for w := range workers {
		for i := range each {
			code := codes[(i+w)%len(codes)]
			binding := ""
			if b := bindings[i%len(bindings)]; b != nil {
				binding = b.Ref
			} else if code == engine.CodeNone {
				code = engine.CodeRouteNotFound
			}
			label := "ALLOW"
			if code != engine.CodeNone {
				label = code.String()
			}
			want[binding+" "+label]++
		}
	}
	wg.Wait()
	if got := gathered(); !maps.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// BenchmarkObserveDecision: what recording a decision costs the request path, over the
// bindings of a large policy, from every CPU at once.
func BenchmarkObserveDecision(b *testing.B) {
	obs, err := observe.New(prometheus.NewRegistry(), nil, nil, logr.Discard(), false)
	if err != nil {
		b.Fatal(err)
	}
	observe := obs.For("grpc")
	ds := make([]engine.Decision, 4096)
	for i := range ds {
		ds[i].Route = &compile.Route{Binding: &compile.Binding{ObjectRef: compile.ObjectRef{Ref: fmt.Sprintf("load/b-%05d", i)}}}
		observe(&engine.Request{}, &ds[i], time.Microsecond)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &engine.Request{}
		for i := 0; pb.Next(); i++ {
			observe(r, &ds[i%len(ds)], time.Microsecond)
		}
	})
}
