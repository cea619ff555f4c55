package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// Waits. Everything is a condition polled under a deadline; the deadlines are generous
// because a reflector that saw its API server vanish retries with exponential backoff
// (0.8s doubling to 30s, with up to 100% jitter; client-go does not let an informer tune
// it), and controller-runtime retries an informer it could not create every 10s.
const (
	settle  = 20 * time.Second // objects reach a running replica
	catchUp = 60 * time.Second // a replica catches up after the API server is back
)

// TestOutage: with the API server and etcd gone, a ready replica keeps deciding from its
// last snapshot (fail static), stays ready, and reports growing staleness; once they are
// back, a change flows into decisions without a restart and the staleness returns to 0.
//
// Cold start, in the same outage (one control-plane restart less, 10-15s): a replica
// started while the API server is unreachable answers every Check with 503 NOT_READY, is not
// ready and not SERVING; once the API server is back it becomes ready and decides as the
// other one.
func TestOutage(t *testing.T) {
	f := newFixture(t, authorizerServer(t))
	in := startInstance(t, restConfig)
	took := in.wantDecisions(t, settle, f.rows, f.want)
	t.Logf("replica ready and deciding in %v", took.Round(time.Millisecond))
	eventually(t, settle, "source current", func() error {
		if up, stale := in.freshness(t); up != 1 || stale != 0 {
			return fmt.Errorf("source_up %v, stale_seconds %v", up, stale)
		}
		return nil
	})

	outage := stopControlPlane(t)
	cold := startInstance(t, restConfig)

	// The ready replica decides exactly as before and stays ready; the cold one is not ready.
	check := func() {
		t.Helper()
		if d := diff(f.rows, in.decideAll(t, f.rows), f.want); d != "" {
			t.Fatalf("decisions changed in the outage:%s", d)
		}
		if code := in.readyz(t); code != http.StatusOK {
			t.Fatalf("/readyz = %d in the outage, want 200", code)
		}
		if s := in.serving(t); s != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("gRPC health = %v in the outage, want SERVING", s)
		}
		if d := diff(f.rows, cold.decideAll(t, f.rows), f.notReady()); d != "" {
			t.Fatalf("cold start, decisions before the first snapshot:%s", d)
		}
		if code := cold.readyz(t); code != http.StatusServiceUnavailable {
			t.Fatalf("cold start, /readyz = %d before the first snapshot, want 503", code)
		}
		if s := cold.serving(t); s != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("cold start, gRPC health = %v before the first snapshot, want NOT_SERVING", s)
		}
		if up, stale := cold.freshness(t); up != 0 || stale <= 0 {
			t.Fatalf("cold start, source_up %v, stale_seconds %v before the first snapshot", up, stale)
		}
	}
	check()
	// The source is known stale, and the staleness grows.
	var first float64
	took = eventually(t, settle, "source stale", func() error {
		up, stale := in.freshness(t)
		if up != 0 || stale <= 0 {
			return fmt.Errorf("source_up %v, stale_seconds %v", up, stale)
		}
		first = stale
		return nil
	})
	t.Logf("outage noticed %v after the control plane was down (stale_seconds %.3f)", took.Round(time.Millisecond), first)
	eventually(t, settle, "staleness grows", func() error {
		if _, stale := in.freshness(t); stale < first+1 {
			return fmt.Errorf("stale_seconds %.3f, want >= %.3f", stale, first+1)
		}
		return nil
	})
	check()
	if _, stale := in.freshness(t); time.Duration(stale*float64(time.Second)) > time.Since(outage)+time.Second {
		t.Errorf("stale_seconds %.3f, but the outage began %v ago", stale, time.Since(outage))
	}

	startControlPlane(t)
	back := time.Now()
	disable(t, f.ns, "one")
	want := f.withCredentialOneDisabled()
	took = in.wantDecisions(t, catchUp, f.rows, want)
	t.Logf("outage %v; the change made after it in decisions %v later", back.Sub(outage).Round(time.Millisecond), took.Round(time.Millisecond))
	took = eventually(t, catchUp, "source current again", func() error {
		if up, stale := in.freshness(t); up != 1 || stale != 0 {
			return fmt.Errorf("source_up %v, stale_seconds %v", up, stale)
		}
		return nil
	})
	t.Logf("stale_seconds back to 0 %v after that", took.Round(time.Millisecond))
	if code := in.readyz(t); code != http.StatusOK {
		t.Fatalf("/readyz = %d after the outage, want 200", code)
	}

	took = eventually(t, catchUp, "cold start ready", func() error {
		if code := cold.readyz(t); code != http.StatusOK {
			return fmt.Errorf("/readyz = %d", code)
		}
		return nil
	})
	t.Logf("cold start: ready %v after the API server was back", time.Since(back).Round(time.Millisecond))
	if d := diff(f.rows, cold.decideAll(t, f.rows), want); d != "" {
		t.Fatalf("cold start, decisions once ready:%s", d)
	}
	eventually(t, settle, "cold start gRPC health SERVING", func() error {
		if s := cold.serving(t); s != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%v", s)
		}
		return nil
	})
	eventually(t, catchUp, "cold start source current", func() error {
		if up, stale := cold.freshness(t); up != 1 || stale != 0 {
			return fmt.Errorf("source_up %v, stale_seconds %v", up, stale)
		}
		return nil
	})
}

// disable sets spec.disabled on a credential, retrying while the API server settles.
func disable(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, settle, "disable credential "+name, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var c authv1alpha1.Credential
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &c); err != nil {
			return err
		}
		c.Spec.Disabled = true
		return k8s.Update(ctx, &c)
	})
}

// TestRestartEmptyCache: a second replica started fresh against a populated cluster denies
// NOT_READY until it is ready, and from then on decides exactly as the running one: it never
// denies what the first allows, nor allows what it denies.
func TestRestartEmptyCache(t *testing.T) {
	f := newFixture(t, authorizerServer(t))
	first := startInstance(t, restConfig)
	first.wantDecisions(t, settle, f.rows, f.want)

	start := time.Now()
	second := startInstance(t, restConfig)
	notReady, compared := 0, 0
	took := eventually(t, settle, "second replica ready", func() error {
		for i, r := range f.rows {
			before := second.policy.Ready()
			got := second.decide(t, r)
			after := second.policy.Ready()
			switch {
			case !after: // not ready for the whole call: no snapshot, or one about to be marked ready
				if got != "503 NOT_READY" && got != f.want[i] {
					t.Fatalf("%s before ready: %s, want 503 NOT_READY (or %s)", r, got, f.want[i])
				}
				if got == "503 NOT_READY" {
					notReady++
				}
			case before: // ready for the whole call
				if got != f.want[i] {
					t.Fatalf("%s once ready: %s, want %s as the first replica", r, got, f.want[i])
				}
				compared++
			}
		}
		if !second.policy.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	t.Logf("second replica ready in %v (%d NOT_READY answers before, %d compared while starting)", took.Round(time.Millisecond), notReady, compared)
	if code := second.readyz(t); code != http.StatusOK {
		t.Fatalf("/readyz = %d once ready", code)
	}
	a, b := first.decideAll(t, f.rows), second.decideAll(t, f.rows)
	if d := diff(f.rows, b, a); d != "" {
		t.Fatalf("the replicas decide differently (got: second, want: first):%s", d)
	}
	if d := diff(f.rows, a, f.want); d != "" {
		t.Fatalf("decisions:%s", d)
	}
	t.Logf("both replicas agree on %d requests, %v after the second started", len(f.rows), time.Since(start).Round(time.Millisecond))
}
