package controllers

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

func TestStripMetadata(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: "a", Namespace: "ns",
			Labels:        map[string]string{"tier": "gold", authv1alpha1.CredentialSecretLabel: "true"},
			Annotations:   map[string]string{lastApplied: "{}", "note": "kept"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		}
	}
	cred := &authv1alpha1.Credential{ObjectMeta: meta()}
	secret := &corev1.Secret{ObjectMeta: meta(), Data: map[string][]byte{"appKey": []byte("k")}}
	for _, o := range []client.Object{cred, secret} {
		if _, err := stripMetadata(o); err != nil {
			t.Fatal(err)
		}
	}
	if cred.ManagedFields != nil || !reflect.DeepEqual(cred.Annotations, map[string]string{"note": "kept"}) ||
		!reflect.DeepEqual(cred.Labels, meta().Labels) {
		t.Errorf("Credential metadata = %+v; want labels and other annotations kept, managedFields and %s gone", cred.ObjectMeta, lastApplied)
	}
	if secret.ManagedFields != nil || secret.Labels != nil || secret.Annotations != nil || string(secret.Data["appKey"]) != "k" {
		t.Errorf("Secret = %+v; want only name, namespace and data", secret)
	}
}

// TestCacheSharesMetadata checks that Credentials entering the informer cache share equal
// labels and spec.metadata, and that what sharedMetadata remembers is bounded.
func TestCacheSharesMetadata(t *testing.T) {
	same := func(a, b map[string]string) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	cred := func(name, tier string) *authv1alpha1.Credential {
		c := &authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a",
			Labels: map[string]string{"tier": tier, "team": "a"}}}
		c.Spec.Metadata = map[string]string{"partner": "acme"}
		if _, err := stripMetadata(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b, c := cred("a", "gold"), cred("b", "gold"), cred("c", "silver")
	if !same(a.Labels, b.Labels) || !same(a.Spec.Metadata, b.Spec.Metadata) || !same(a.Spec.Metadata, c.Spec.Metadata) {
		t.Error("equal maps are not shared")
	}
	if same(a.Labels, c.Labels) || c.Labels["tier"] != "silver" {
		t.Errorf("different labels shared: %v", c.Labels)
	}

	s := sharedMetadata{limit: 2}
	m1, m2, m3 := map[string]string{"k": "1"}, map[string]string{"k": "2"}, map[string]string{"k": "3"}
	s.stringMap(m1)
	s.stringMap(m2)
	s.stringMap(m3)
	if len(s.maps) != 2 || !same(s.stringMap(map[string]string{"k": "1"}), m1) {
		t.Errorf("with limit 2: %d maps remembered, or the first is not shared", len(s.maps))
	}
	if got := s.stringMap(map[string]string{"k": "3"}); same(got, m3) {
		t.Error("a map past the limit was remembered")
	}
}
