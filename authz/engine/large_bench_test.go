package engine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
)

// The large world of the issue, as the load test's two-factor scenario uses it: 10,000
// APIBindings over 1,000 namespaces, each taking an AppCode and asking its namespace's
// CustomAuthorizer, and 100,000 Credentials, 100 per namespace, every one bound to the 10
// bindings of its namespace.
const (
	largeNamespaces  = 1000
	largeBindings    = 10_000
	largeCredentials = 100_000
)

// uuidFor is a UUID in its canonical text form for an object, as the API server gives each.
func uuidFor(key string) types.UID {
	s := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(s[:16])
	return types.UID(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

func largeCode(c int) string { return fmt.Sprintf("APPCODE-%08d-%032d", c, c) }

func largeWorld(b *testing.B, authzURL string) *compile.Snapshot {
	b.Helper()
	in := compile.NewInputs()
	in.Now = now
	meta := func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: uuidFor(ns + "/" + name), ResourceVersion: "1", Generation: 1,
			CreationTimestamp: metav1.NewTime(now.Add(-time.Hour)), Labels: map[string]string{"tier": "gold"}}
	}
	ns := func(i int) string { return fmt.Sprintf("team-%d", i) }
	for n := range largeNamespaces {
		a := &authv1alpha1.CustomAuthorizer{ObjectMeta: meta(ns(n), "token-check")}
		a.Spec.URL = authzURL
		a.Spec.IdentitySources = []authv1alpha1.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}}
		in.Set(a)
	}
	per := largeCredentials / largeNamespaces
	for c := range largeCredentials {
		n := ns(c / per)
		in.Set(&corev1.Secret{ObjectMeta: meta(n, fmt.Sprintf("keys-%d", c)), Data: map[string][]byte{
			"appKey": []byte(fmt.Sprintf("app-key-%08d", c)), "appCodes": []byte(largeCode(c)),
		}})
		cr := &authv1alpha1.Credential{ObjectMeta: meta(n, fmt.Sprintf("cred-%d", c))}
		cr.Spec.SecretRef.Name = fmt.Sprintf("keys-%d", c)
		in.Set(cr)
	}
	for i := range largeBindings {
		bd := &authv1alpha1.APIBinding{ObjectMeta: meta(ns(i/(largeBindings/largeNamespaces)), fmt.Sprintf("api-%d", i))}
		bd.Spec.Hosts = []string{fmt.Sprintf("svc-%d.example.com", i)}
		bd.Spec.Routes = []authv1alpha1.Route{{Path: fmt.Sprintf("/v1/api-%d", i), Match: authv1alpha1.PathMatchPrefix}}
		bd.Spec.App = &authv1alpha1.AppAuth{Methods: []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthAppCode},
			CredentialSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}}
		bd.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "token-check"}
		in.Set(bd)
	}
	s, _ := compile.Build(in, nil)
	return s
}

// largeRequest is a two-factor request of binding i with one of its credentials.
func largeRequest(rng *rand.Rand, i int) *engine.Request {
	per := largeCredentials / largeNamespaces
	c := i/(largeBindings/largeNamespaces)*per + rng.IntN(per)
	return &engine.Request{Method: "GET", Authority: fmt.Sprintf("svc-%d.example.com", i), Target: fmt.Sprintf("/v1/api-%d/items/7", i),
		Headers: hdr("x-app-code", largeCode(c), "token", "t0k", "x-request-id", fmt.Sprintf("r-%d", i), "user-agent", "bench", "accept", "*/*")}
}

// BenchmarkDecideLargeWorld: cached two-factor decisions in the large world. "one" repeats one
// request, as the benchmarks above do; "4096" cycles through a pool of 4,096 requests over
// random bindings and credentials, as the load test sends them, so that the objects a
// decision reads are seldom in the CPU's caches. The difference is what the size of the
// world costs a decision.
func BenchmarkDecideLargeWorld(b *testing.B) {
	s := largeWorld(b, enginetest.Authorizer(b))
	e := &engine.Engine{Snapshot: func() *compile.Snapshot { return s }, Authorizer: authorizer.New(authorizer.Options{})}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 4096} {
		reqs := make([]*engine.Request, n)
		for i := range reqs {
			reqs[i] = largeRequest(rng, rng.IntN(largeBindings))
		}
		ctx := context.Background()
		for _, r := range reqs { // every answer cached before the clock starts
			if d := e.Decide(ctx, r); !d.Allowed() {
				b.Fatalf("denied: %s %s", d.Code, d.Message)
			}
		}
		name := "one"
		if n > 1 {
			name = fmt.Sprint(n)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if d := e.Decide(ctx, reqs[i%n]); !d.Allowed() || !d.Cached {
					b.Fatalf("%s (cached %v)", d.Code, d.Cached)
				}
				i++
			}
		})
	}
}
