package compile_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// Scale of the benchmark world: 10,000 APIBindings and 100,000 Credentials (each with its
// Secret) over 1,000 namespaces, 100 CustomAuthorizers.
const (
	benchNamespaces  = 1000
	benchBindings    = 10_000
	benchCredentials = 100_000
	benchAuthorizers = 100
)

func benchMeta(ns, name string, i int) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: ns, Name: name, UID: benchUID(ns + "/" + name), ResourceVersion: "1", Generation: 1,
		CreationTimestamp: metav1.NewTime(epoch.Add(-time.Hour).Add(time.Duration(i) * time.Millisecond)),
		Labels:            map[string]string{"tier": []string{"gold", "silver"}[i%2]},
	}
}

// benchUID is a UUID in its canonical text form for an object, as the API server gives each
// (since round 16; "namespace/name" before, which the compiler keeps apart from UUIDs).
func benchUID(key string) types.UID {
	s := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(s[:16])
	return types.UID(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

func benchSecret(ns string, i int, rv string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: benchMeta(ns, fmt.Sprintf("keys-%d", i), i), Data: map[string][]byte{
		"appKey":    []byte(fmt.Sprintf("app-key-%08d", i)),
		"appSecret": []byte(fmt.Sprintf("secret-%016d", i)),
	}}
	if i%4 == 0 {
		s.Data["appCodes"] = []byte(fmt.Sprintf("code-%040d", i))
	}
	s.ResourceVersion = rv
	return s
}

func benchBinding(ns string, i int, rv string) *authv1alpha1.APIBinding {
	b := &authv1alpha1.APIBinding{ObjectMeta: benchMeta(ns, fmt.Sprintf("api-%d", i), i)}
	b.ResourceVersion = rv
	b.Spec.Hosts = []string{fmt.Sprintf("svc-%d.example.com", i), fmt.Sprintf("*.%s.example.com", ns)}
	b.Spec.Routes = []authv1alpha1.Route{
		{Path: fmt.Sprintf("/v1/api-%d", i), Match: authv1alpha1.PathMatchPrefix, Methods: []authv1alpha1.HTTPMethod{"GET", "POST"}},
		{Path: fmt.Sprintf("/v1/api-%d/export", i), Match: authv1alpha1.PathMatchExact},
		{Path: fmt.Sprintf("/v2/api-%d", i), Match: authv1alpha1.PathMatchPrefix},
	}
	b.Spec.App = &authv1alpha1.AppAuth{Methods: []authv1alpha1.AppAuthMethod{"Signature", "AppCode"}}
	if i%2 == 0 {
		b.Spec.App.CredentialSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
	} else {
		b.Spec.App.Credentials = []string{fmt.Sprintf("cred-%d", i*10), fmt.Sprintf("cred-%d", i*10+1)}
	}
	b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: fmt.Sprintf("authz-%d", i%benchAuthorizers)}
	return b
}

func benchWorld() *compile.Inputs {
	return sizedWorld(benchBindings, benchCredentials, benchNamespaces)
}

// sizedWorld is the benchmark world with other counts; bindings and credentials are spread
// evenly over the namespaces.
func sizedWorld(bindings, credentials, namespaces int) *compile.Inputs {
	return inputsFrom(worldObjects(bindings, credentials, namespaces))
}

// worldObjects returns the objects of sizedWorld, as an informer cache would hold them.
func worldObjects(bindings, credentials, namespaces int) []client.Object {
	objs := make([]client.Object, 0, 2*credentials+2*bindings)
	ns := func(i, per int) string { return fmt.Sprintf("team-%d", i/per) }
	for i := range credentials {
		n := ns(i, credentials/namespaces)
		objs = append(objs, benchSecret(n, i, "1"))
		c := &authv1alpha1.Credential{ObjectMeta: benchMeta(n, fmt.Sprintf("cred-%d", i), i)}
		c.Spec.SecretRef.Name = fmt.Sprintf("keys-%d", i)
		objs = append(objs, c)
	}
	for i := range bindings {
		n := ns(i, bindings/namespaces)
		objs = append(objs, benchBinding(n, i, "1"))
		a := &authv1alpha1.CustomAuthorizer{ObjectMeta: benchMeta(n, fmt.Sprintf("authz-%d", i%benchAuthorizers), i)}
		a.Spec.URL = "http://authz.example.com/verify"
		a.Spec.IdentitySources = []authv1alpha1.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}}
		objs = append(objs, a)
	}
	return objs
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkBuildFull compiles the whole world from scratch. live-MB is the heap the
// snapshot keeps alive beyond its inputs; inputs-MB is what the inputs keep beyond the
// objects, which a Kubernetes replica's informer cache holds anyway (but for the Secrets:
// the inputs keep a compact copy of their data, and nothing else does).
func BenchmarkBuildFull(b *testing.B) {
	objs := worldObjects(benchBindings, benchCredentials, benchNamespaces)
	start := liveHeap()
	in := compile.NewInputs()
	in.Now = epoch
	for _, o := range objs {
		in.Set(o)
	}
	before := liveHeap()
	var snap *compile.Snapshot
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		snap, _ = compile.Build(in, nil)
	}
	b.StopTimer()
	after := liveHeap()
	runtime.KeepAlive(snap)
	runtime.KeepAlive(in)
	runtime.KeepAlive(objs)
	b.ReportMetric(float64(int64(after)-int64(before))/(1<<20), "live-MB")
	b.ReportMetric(float64(int64(before)-int64(start))/(1<<20), "inputs-MB")
}

// BenchmarkBuildOneChange measures the update after one object changes, for each kind.
func BenchmarkBuildOneChange(b *testing.B) {
	in := benchWorld()
	base, _ := compile.Build(in, nil)
	cases := []struct {
		name   string
		change func(i int)
	}{
		{"Credential", func(i int) {
			c := &authv1alpha1.Credential{ObjectMeta: benchMeta("team-7", "cred-700", 700)}
			c.ResourceVersion = fmt.Sprint(i + 2)
			c.Spec.SecretRef.Name = "keys-700"
			c.Spec.Disabled = i%2 == 0
			in.Set(c)
		}},
		{"Secret", func(i int) { in.Set(benchSecret("team-7", 700, fmt.Sprint(i+2))) }},
		{"APIBinding", func(i int) {
			bd := benchBinding("team-7", 70, fmt.Sprint(i+2))
			if i%2 == 0 {
				bd.Spec.Routes = bd.Spec.Routes[:2]
			}
			in.Set(bd)
		}},
		{"CustomAuthorizer", func(i int) {
			a := &authv1alpha1.CustomAuthorizer{ObjectMeta: benchMeta("team-7", "authz-70", 70)}
			a.ResourceVersion = fmt.Sprint(i + 2)
			a.Spec.URL = fmt.Sprintf("http://authz.example.com/verify?v=%d", i%2)
			a.Spec.IdentitySources = []authv1alpha1.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}}
			in.Set(a)
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			snap := base
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				tc.change(i)
				i++
				snap, _ = compile.Build(in, snap)
			}
			if snap.Lookup("svc-70.example.com", "/v1/api-70", compile.MethodGET) == nil {
				b.Fatal("the world lost a route")
			}
		})
	}
}

// BenchmarkLookup shows that finding the route and the credential of a request does not
// depend on how many bindings and credentials there are: the same lookups in a world of 10
// bindings and 100 credentials and in one of 10,000 and 100,000.
func BenchmarkLookup(b *testing.B) {
	for _, size := range []struct {
		name                              string
		bindings, credentials, namespaces int
	}{
		{"small", 10, 100, 1},
		{"large", benchBindings, benchCredentials, benchNamespaces},
	} {
		snap, _ := compile.Build(sizedWorld(size.bindings, size.credentials, size.namespaces), nil)
		const n = 1024
		hosts, paths, keys, wild := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		codes := make([][sha256.Size]byte, n)
		for i := range n {
			bi := (i * 7919) % size.bindings
			hosts[i], paths[i] = fmt.Sprintf("svc-%d.example.com", bi), fmt.Sprintf("/v1/api-%d/orders/%d", bi, i)
			ci := (i * 7919) % size.credentials
			keys[i] = fmt.Sprintf("app-key-%08d", ci)
			codes[i] = sha256.Sum256(fmt.Appendf(nil, "code-%040d", ci-ci%4))
			wild[i] = fmt.Sprintf("x.team-%d.example.com", (i*7919)%size.namespaces)
		}
		b.Run("Route/"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if snap.Lookup(hosts[i%n], paths[i%n], compile.MethodGET) == nil {
					b.Fatalf("no route for %s%s", hosts[i%n], paths[i%n])
				}
				i++
			}
		})
		b.Run("WildcardHost/"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if snap.Host(wild[i%n]) == nil {
					b.Fatal("no wildcard host")
				}
				i++
			}
		})
		b.Run("AppKey/"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if snap.CredentialByAppKey(keys[i%n]) == nil {
					b.Fatalf("no credential for %s", keys[i%n])
				}
				i++
			}
		})
		b.Run("AppCode/"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if snap.CredentialByAppCode(codes[i%n]) == nil {
					b.Fatalf("no credential for AppCode %d", i%n)
				}
				i++
			}
		})
	}
}
