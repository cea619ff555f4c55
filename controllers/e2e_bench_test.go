package controllers_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkAPIWriteToSnapshot measures, against the real kube-apiserver, the time from an
// API write (one Credential disabled or enabled again) until the published snapshot reflects
// it, in a world of PORTCULLIS_E2E_CREDENTIALS credentials (default 10,000, each with its
// Secret) and a tenth as many bindings. api-ms is the API call alone; flip-ms is the whole
// write-to-decision time.
func BenchmarkAPIWriteToSnapshot(b *testing.B) {
	n := envInt("PORTCULLIS_E2E_CREDENTIALS", 10000)
	ctx := context.Background()
	ns := namespace(b)
	objs := make(chan client.Object, 64)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range objs {
				if err := k8s.Create(ctx, o); err != nil {
					failed.Do(func() { b.Errorf("create %s: %v", o.GetName(), err) })
				}
			}
		}()
	}
	for i := range n {
		objs <- secret(ns, fmt.Sprintf("k%d", i), map[string]string{"appKey": fmt.Sprintf("%s-%d", ns, i), "appSecret": "0123456789abcdef"})
		objs <- credential(ns, fmt.Sprintf("c%d", i), fmt.Sprintf("k%d", i))
		if i%10 == 0 {
			objs <- binding(ns, fmt.Sprintf("b%d", i), fmt.Sprintf("h%d.%s.example.com", i, ns), "/", func(s *authv1alpha1.APIBindingSpec) {
				s.App = &authv1alpha1.AppAuth{Credentials: []string{fmt.Sprintf("c%d", i)}}
			})
		}
	}
	close(objs)
	wg.Wait()
	if b.Failed() {
		return
	}
	indexed := func(i int) bool { return policy.Snapshot().CredentialByAppKey(fmt.Sprintf("%s-%d", ns, i)) != nil }
	deadline := time.Now().Add(20 * time.Minute)
	for !indexed(n - 1) {
		if time.Now().After(deadline) {
			b.Fatal("the world never reached the snapshot")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Measure a settled world: wait until the elected writer has written the statuses of
	// everything just created (otherwise the measurement is of that backlog).
	var last float64 = -1
	for settled := 0; settled < 3; {
		time.Sleep(time.Second)
		n := statusWriteCount(b)
		if n == last {
			settled++
		} else {
			settled, last = 0, n
		}
		if time.Now().After(deadline) {
			b.Fatal("status writes never settled")
		}
	}

	var api, flip time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c := &authv1alpha1.Credential{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("c%d", i%n)}, c); err != nil {
			b.Fatal(err)
		}
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.Disabled = !c.Spec.Disabled
		want := !c.Spec.Disabled
		start := time.Now()
		if err := k8s.Patch(ctx, c, patch); err != nil {
			b.Fatal(err)
		}
		api += time.Since(start)
		for indexed(i%n) != want {
			if time.Since(start) > 10*time.Second {
				b.Fatal("the write never reached the snapshot")
			}
			time.Sleep(50 * time.Microsecond)
		}
		flip += time.Since(start)
	}
	b.ReportMetric(float64(api.Microseconds())/1000/float64(b.N), "api-ms")
	b.ReportMetric(float64(flip.Microseconds())/1000/float64(b.N), "flip-ms")
	b.ReportMetric(float64(n), "credentials")
}

// statusWriteCount sums portcullis_status_writes_total over its results.
func statusWriteCount(tb testing.TB) float64 {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "portcullis_status_writes_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
