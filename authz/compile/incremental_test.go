package compile_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
)

// world generates random objects over small name pools, so that edits collide: shared
// appKeys and codes, shared hosts and paths, references that come and go.
type world struct {
	r   *rand.Rand
	rv  int
	age time.Duration
}

func (w *world) pick(xs ...string) string { return xs[w.r.IntN(len(xs))] }

func (w *world) meta(name string) metav1.ObjectMeta {
	w.rv++
	w.age += time.Second
	return metav1.ObjectMeta{
		Name: name, Namespace: w.pick("a", "b"),
		UID:               types.UID("uid-" + name),
		ResourceVersion:   fmt.Sprint(w.rv),
		Generation:        int64(w.rv),
		CreationTimestamp: metav1.NewTime(epoch.Add(-time.Hour).Add(w.age)),
		Labels:            map[string]string{"tier": w.pick("gold", "silver")},
	}
}

func (w *world) object() client.Object {
	switch w.r.IntN(4) {
	case 0:
		m := w.meta(w.pick("s1", "s2", "s3", "s4"))
		m.Labels = nil
		s := &corev1.Secret{ObjectMeta: m, Data: map[string][]byte{
			"appKey": []byte(w.pick("k1", "k2", "k3", "k4", "k5")),
		}}
		if w.r.IntN(4) > 0 {
			s.Data["appSecret"] = []byte(w.pick("0123456789abcdef", "short"))
		}
		if w.r.IntN(2) == 0 {
			s.Data["appCodes"] = []byte(w.pick("CODE1CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", "CODE2CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"))
		}
		if w.r.IntN(3) == 0 {
			s.Data["data"] = []byte("user-" + w.pick("x", "y"))
		}
		return s
	case 1:
		c := &authv1alpha1.Credential{ObjectMeta: w.meta(w.pick("c1", "c2", "c3", "c4", "c5"))}
		c.Spec.SecretRef.Name = w.pick("s1", "s2", "s3", "s4")
		c.Spec.Disabled = w.r.IntN(8) == 0
		if w.r.IntN(6) == 0 {
			c.Spec.ExpiresAt = &metav1.Time{Time: epoch.Add(time.Duration(w.r.IntN(3)-1) * time.Hour)}
		}
		return c
	case 2:
		a := &authv1alpha1.CustomAuthorizer{ObjectMeta: w.meta(w.pick("z1", "z2"))}
		a.Spec.URL = w.pick("http://fn.local/verify", "https://fn.local:8443/v", "ftp://bad")
		a.Spec.IdentitySources = []authv1alpha1.IdentitySource{{In: authv1alpha1.IdentityHeader, Name: "token"}}
		if w.r.IntN(3) == 0 {
			a.Spec.UserDataFrom = &authv1alpha1.UserDataSource{SecretKeyRef: authv1alpha1.SecretKeySelector{Name: w.pick("s1", "s2"), Key: "data"}}
		}
		return a
	default:
		b := &authv1alpha1.APIBinding{ObjectMeta: w.meta(w.pick("b1", "b2", "b3", "b4", "b5", "b6"))}
		b.Spec.Hosts = []string{w.pick("api.example.com", "*.example.com", "x.example.com")}
		if w.r.IntN(2) == 0 {
			b.Spec.Hosts = append(b.Spec.Hosts, w.pick("*.shop.example.com", "other.example.org"))
		}
		for range 1 + w.r.IntN(3) {
			r := authv1alpha1.Route{Path: w.pick("/", "/orders", "/orders/7", "/users"), Match: authv1alpha1.PathMatchType(w.pick("Exact", "PathPrefix"))}
			if w.r.IntN(2) == 0 {
				r.Methods = []authv1alpha1.HTTPMethod{authv1alpha1.HTTPMethod(w.pick("GET", "POST")), authv1alpha1.HTTPMethod(w.pick("GET", "PUT"))}
				if r.Methods[0] == r.Methods[1] {
					r.Methods = r.Methods[:1]
				}
			}
			b.Spec.Routes = append(b.Spec.Routes, r)
		}
		switch w.r.IntN(4) {
		case 0:
			b.Spec.Anonymous = true
		case 1:
			b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: w.pick("z1", "z2", "z3")}
		default:
			b.Spec.App = &authv1alpha1.AppAuth{}
			if w.r.IntN(2) == 0 {
				b.Spec.App.Credentials = []string{w.pick("c1", "c2", "c3", "c9")}
				if n := w.pick("c2", "c4", "c5"); w.r.IntN(2) == 0 && n != b.Spec.App.Credentials[0] {
					b.Spec.App.Credentials = append(b.Spec.App.Credentials, n) // unsorted: c9, c4
				}
			} else {
				b.Spec.App.CredentialSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": w.pick("gold", "silver")}}
			}
			if w.r.IntN(2) == 0 {
				b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: w.pick("z1", "z2")}
			}
		}
		return b
	}
}

// TestIncrementalMatchesFull applies random creates, updates and deletes, and after each
// one checks that the incremental build equals a build from scratch, and that the statuses
// it reports are exactly the ones that changed.
func TestIncrementalMatchesFull(t *testing.T) {
	for s := range 20 {
		w := &world{r: rand.New(rand.NewPCG(uint64(s), 7))}
		in := compile.NewInputs()
		in.Now = epoch
		var snap *compile.Snapshot
		known := map[compile.ObjectKey]compile.ObjectStatus{}
		live := map[compile.ObjectKey]client.Object{} // what in holds
		for step := range 150 {
			var what string
			if len(live) > 0 && w.r.IntN(5) == 0 {
				keys := slices.SortedFunc(maps.Keys(live), func(a, b compile.ObjectKey) int { return strings.Compare(a.String(), b.String()) })
				k := keys[w.r.IntN(len(keys))]
				in.Delete(k)
				delete(live, k)
				delete(known, k)
				what = "delete " + k.String()
			} else {
				o := w.object()
				k, _ := compile.KeyOf(o)
				// Keep the creation time of an object being updated, as the API server does.
				if e, ok := live[k]; ok {
					o.SetCreationTimestamp(e.GetCreationTimestamp())
				}
				in.Set(o)
				live[k] = o
				what = "set " + k.String()
			}
			next, changed := compile.Build(in, snap)
			snap = next
			for st := range changed.All() {
				known[st.Key] = st
			}

			full := compile.NewInputs()
			full.Now = epoch
			for _, o := range live {
				full.Set(o)
			}
			want, _ := compile.Build(full, nil)
			if got, exp := snap.Describe(), want.Describe(); got != exp {
				t.Fatalf("seed %d step %d (%s): incremental build differs from a full build:\n%s", s, step, what, lineDiff(exp, got))
			}
			if got, exp := snap.Claims(), want.Claims(); got != exp {
				t.Fatalf("seed %d step %d (%s): the incremental build's claims differ from a full build's:\n%s", s, step, what, lineDiff(exp, got))
			}
			all := want.Statuses()
			if len(all) != len(known) {
				t.Fatalf("seed %d step %d (%s): %d statuses reported over time, %d expected", s, step, what, len(known), len(all))
			}
			for i := range all {
				if k := known[all[i].Key]; !k.Equal(&all[i]) {
					t.Fatalf("seed %d step %d (%s): status of %s was not reported when it changed:\n got %+v\nwant %+v", s, step, what, all[i].Key, k, all[i])
				}
			}
		}
	}
}
