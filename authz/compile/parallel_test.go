package compile_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// TestParallelFullBuild checks that a full build on several goroutines gives the snapshot
// and statuses of a build on one, for a world where claims collide: shared appKeys and
// AppCodes (some between credentials of the same age), missing and invalid Secrets,
// disabled and expired credentials.
func TestParallelFullBuild(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := compile.NewInputs()
	in.Now = now
	const n = 5000
	for i := range n {
		ns := fmt.Sprintf("team-%d", i%7)
		meta := func(name string) metav1.ObjectMeta {
			return metav1.ObjectMeta{
				Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), ResourceVersion: "1", Generation: 1,
				// Every tenth age repeats, so that the order falls back to the names.
				CreationTimestamp: metav1.NewTime(now.Add(-time.Duration(i-i%10*(i%3)) * time.Second)),
				Labels:            map[string]string{"tier": []string{"gold", "silver"}[i%2]},
			}
		}
		data := map[string][]byte{
			compile.SecretKeyAppKey:    fmt.Appendf(nil, "key-%d", i%3000), // 2,000 keys claimed twice
			compile.SecretKeyAppSecret: []byte("0123456789abcdef"),
		}
		switch i % 5 {
		case 0:
			data[compile.SecretKeyAppCodes] = fmt.Appendf(nil, "CODE-%035d\nCODE-%035d", i%1000, i)
		case 1:
			data[compile.SecretKeyAppSecret] = []byte("short") // invalid
		}
		if i%11 != 0 { // every eleventh Secret is missing
			in.Set(&corev1.Secret{ObjectMeta: meta(fmt.Sprintf("keys-%d", i)), Data: data})
		}
		c := &authv1alpha1.Credential{ObjectMeta: meta(fmt.Sprintf("cred-%d", i))}
		c.Spec.SecretRef.Name = fmt.Sprintf("keys-%d", i)
		c.Spec.Disabled = i%13 == 0
		if i%17 == 0 {
			c.Spec.ExpiresAt = &metav1.Time{Time: now.Add(-time.Minute)}
		}
		in.Set(c)
	}
	for i := range 50 {
		ns := fmt.Sprintf("team-%d", i%7)
		b := &authv1alpha1.APIBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("api-%d", i), UID: types.UID(fmt.Sprint(i)), Generation: 1}}
		b.Spec.Hosts = []string{fmt.Sprintf("svc-%d.example.com", i)}
		b.Spec.Routes = []authv1alpha1.Route{{Path: "/", Match: authv1alpha1.PathMatchPrefix}}
		b.Spec.App = &authv1alpha1.AppAuth{}
		if i%2 == 0 {
			b.Spec.App.CredentialSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
		} else {
			b.Spec.App.Credentials = []string{fmt.Sprintf("cred-%d", i), fmt.Sprintf("cred-%d", i+7)}
		}
		in.Set(b)
	}

	build := func(workers int) (string, []compile.ObjectStatus) {
		defer compile.SetBuildWorkers(workers)()
		snap, _ := compile.Build(in, nil)
		return snap.Describe(), snap.Statuses()
	}
	wantDesc, wantStatuses := build(1)
	for _, workers := range []int{2, 3} {
		desc, statuses := build(workers)
		if desc != wantDesc {
			t.Errorf("%d workers: snapshot differs from one worker's:\n%s", workers, lineDiff(wantDesc, desc))
		}
		if len(statuses) != len(wantStatuses) {
			t.Fatalf("%d workers: %d statuses, want %d", workers, len(statuses), len(wantStatuses))
		}
		for i := range statuses {
			if !statuses[i].Equal(&wantStatuses[i]) {
				t.Errorf("%d workers: status of %s is %+v, want %+v", workers, statuses[i].Key, statuses[i], wantStatuses[i])
				break
			}
		}
	}
	conflicts := 0
	for _, st := range wantStatuses {
		if st.Key.Kind == compile.KindCredential && st.Conditions[0].Reason == authv1alpha1.ReasonAppKeyConflict {
			conflicts++
		}
	}
	if conflicts < 1000 {
		t.Errorf("only %d credentials lost a conflict: the world does not exercise the claims", conflicts)
	}
}
