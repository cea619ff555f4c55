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
