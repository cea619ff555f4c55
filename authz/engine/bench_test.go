package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
)

// liveWorld is the fixture world with its authorizer pointed at a real local HTTP function
// (enginetest.Authorizer, which allows token t0k).
func liveWorld(b *testing.B) *compile.Snapshot {
	b.Helper()
	return enginetest.World(b, enginetest.Authorizer(b), time.Now())
}

func benchDecide(b *testing.B, e *engine.Engine, r *engine.Request) {
	b.Helper()
	ctx := context.Background()
	if d := e.Decide(ctx, r); !d.Allowed() { // warms the cache too
		b.Fatalf("denied: %s %s", d.Code, d.Message)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := e.Decide(ctx, r)
		if !d.Allowed() {
			b.Fatal(d.Message)
		}
	}
}

// BenchmarkDecideTwoFactorCached: AppCode + a cached custom-authorizer answer, in process.
func BenchmarkDecideTwoFactorCached(b *testing.B) {
	s := liveWorld(b)
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return s }, Authorizer: authorizer.New(authorizer.Options{})}
	benchDecide(b, e, &engine.Request{Method: "GET", Authority: "api.example.com", Target: "/orders/7?test=demo",
		Headers: hdr("x-app-code", goodCode, "token", "t0k", "x-request-id", "r-1", "user-agent", "bench", "accept", "*/*")})
}

// BenchmarkDecideAppCode: AppCode only.
func BenchmarkDecideAppCode(b *testing.B) {
	s := liveWorld(b)
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return s }}
	benchDecide(b, e, &engine.Request{Method: "GET", Authority: "api.example.com", Target: "/catalog/7",
		Headers: hdr("x-app-code", goodCode, "x-request-id", "r-1", "user-agent", "bench", "accept", "*/*")})
}

// BenchmarkDecideSignature: a signed GET with a query, signature only.
func BenchmarkDecideSignature(b *testing.B) {
	s := liveWorld(b)
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return s }, Now: func() time.Time { return now }}
	target := "/payments/7?b=2&a=1"
	benchDecide(b, e, &engine.Request{Method: "GET", Authority: "api.example.com", Target: target,
		Headers: append(signed(b, "GET", target, "app-key-0001", secret, now), hdr("x-request-id", "r-1", "user-agent", "bench")...)})
}

// BenchmarkRouteLookup10k: host and route lookup among 10,000 bindings.
func BenchmarkRouteLookup10k(b *testing.B) {
	in := compile.NewInputs()
	in.Now = now
	for i := range 10000 {
		bd := bindingObj(fmt.Sprintf("b%d", i), fmt.Sprintf("svc-%d.example.com", i%1000), fmt.Sprintf("/api/v%d/items", i))
		in.Set(bd)
	}
	s, _ := compile.Build(in, nil)
	hosts := make([]string, 1000)
	paths := make([]string, 1000)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("svc-%d.example.com", (i*7)%1000)
		paths[i] = fmt.Sprintf("/api/v%d/items/42", (i*7)%1000+1000*((i*3)%10))
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if s.Lookup(hosts[i%1000], paths[i%1000], compile.MethodGET) == nil {
			b.Fatal("no route")
		}
		i++
	}
}

func bindingObj(name, host, path string) *authv1alpha1.APIBinding {
	return &authv1alpha1.APIBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name, UID: types.UID(name), ResourceVersion: "1", Generation: 1},
		Spec: authv1alpha1.APIBindingSpec{
			Hosts:     []string{host},
			Routes:    []authv1alpha1.Route{{Path: path, Match: authv1alpha1.PathMatchPrefix}},
			Anonymous: true,
		},
	}
}
