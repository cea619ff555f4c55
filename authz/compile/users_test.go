package compile

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// TestUsersIndex checks the inputs' reverse indexes against the objects the set holds: as
// the first build has them made (after 60 random steps, during which they are not kept), and
// after each of the random creates, updates and deletes that follow, in any order: a
// Credential before its Secret, a binding before its credentials, names repeated in a
// binding, and bindings naming more credentials than namesScanned.
func TestUsersIndex(t *testing.T) {
	for seed := range 20 {
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		in := NewInputs()
		rv := 0
		meta := func(name string) metav1.ObjectMeta {
			rv++
			return metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: fmt.Sprint(rv)}
		}
		creds := make([]string, 40)
		for i := range creds {
			creds[i] = fmt.Sprintf("c%d", i)
		}
		for step := range 400 {
			if step == 60 {
				in.takeChanges() // as the first build does
			}
			var what string
			switch r.IntN(7) {
			case 0:
				k := ObjectKey{Kind: Kind(1 + r.IntN(4)), NamespacedName: nn{Namespace: "ns"}}
				switch k.Kind {
				case KindCredential:
					k.Name = creds[r.IntN(8)]
				case KindSecret:
					k.Name = fmt.Sprintf("s%d", r.IntN(4))
				default:
					k.Kind, k.Name = KindAPIBinding, fmt.Sprintf("b%d", r.IntN(4))
				}
				in.Delete(k)
				what = "delete " + k.String()
			case 1, 2:
				c := &authv1alpha1.Credential{ObjectMeta: meta(creds[r.IntN(8)])}
				c.Spec.SecretRef.Name = fmt.Sprintf("s%d", r.IntN(4))
				in.Set(c)
				what = "set Credential " + c.Name + " naming " + c.Spec.SecretRef.Name
			case 3:
				s := &corev1.Secret{ObjectMeta: meta(fmt.Sprintf("s%d", r.IntN(4)))}
				in.Set(s)
				what = "set Secret " + s.Name
			default:
				b := &authv1alpha1.APIBinding{ObjectMeta: meta(fmt.Sprintf("b%d", r.IntN(4)))}
				if r.IntN(4) > 0 {
					n := []int{0, 1, 2, 3, namesScanned + 5}[r.IntN(5)]
					b.Spec.App = &authv1alpha1.AppAuth{}
					for range n {
						b.Spec.App.Credentials = append(b.Spec.App.Credentials, creds[r.IntN(len(creds))])
					}
				}
				in.Set(b)
				what = fmt.Sprintf("set APIBinding %s naming %d credentials", b.Name, len(bindingCreds(b)))
			}

			if step < 60 {
				continue
			}
			// What the objects say.
			secretUsers, credUsers := map[string][]string{}, map[string][]string{}
			in.credentials.all(func(k nn, c *credInput) { secretUsers[c.secretName] = append(secretUsers[c.secretName], k.Name) })
			in.bindings.all(func(k nn, b *authv1alpha1.APIBinding) {
				for _, c := range bindingCreds(b) {
					if !slices.Contains(credUsers[c], k.Name) {
						credUsers[c] = append(credUsers[c], k.Name)
					}
				}
			})
			check := func(index string, u *usersIndex, target string, want []string) {
				got := slices.Collect(u.of(nn{Namespace: "ns", Name: target}).all())
				if slices.Sort(got); len(got) == 0 {
					got = nil
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d (%s): %s of %s = %q, want %q", seed, step, what, index, target, got, want)
				}
			}
			for i := range 4 {
				s := fmt.Sprintf("s%d", i)
				check("Credentials naming Secret", &in.secretUsers, s, secretUsers[s])
			}
			for _, c := range creds {
				check("APIBindings naming Credential", &in.credUsers, c, credUsers[c])
			}
			for _, u := range []*usersIndex{&in.secretUsers, &in.credUsers} {
				if u.orphans != nil && len(u.orphans) == 0 {
					t.Fatalf("seed %d step %d (%s): an empty map of orphans is kept", seed, step, what)
				}
				for k, r := range u.orphans {
					if u.held(k) != nil || r.first == "" {
						t.Fatalf("seed %d step %d (%s): orphans hold %v for %s, which the set holds or nobody names", seed, step, what, slices.Collect(r.all()), k)
					}
				}
			}
		}
	}
}

func bindingCreds(b *authv1alpha1.APIBinding) []string {
	_, creds := bindingRefs(b)
	return creds
}
