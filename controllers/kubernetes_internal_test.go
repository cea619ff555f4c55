package controllers

import (
	"bytes"
	"fmt"
	"reflect"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

func TestStripMetadata(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: "a", Namespace: "ns",
			Labels:        map[string]string{"tier": "gold"},
			Annotations:   map[string]string{lastApplied: "{}", "note": "kept"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		}
	}
	cred := &authv1alpha1.Credential{ObjectMeta: meta()}
	if _, err := stripMetadata(cred); err != nil {
		t.Fatal(err)
	}
	if cred.ManagedFields != nil || !reflect.DeepEqual(cred.Annotations, map[string]string{"note": "kept"}) ||
		!reflect.DeepEqual(cred.Labels, meta().Labels) {
		t.Errorf("Credential metadata = %+v; want labels and other annotations kept, managedFields and %s gone", cred.ObjectMeta, lastApplied)
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

// TestCacheSharesConditions checks that objects entering the informer cache share equal
// status conditions, and only equal ones.
func TestCacheSharesConditions(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	ready := func(msg string, gen int64, at metav1.Time) []metav1.Condition {
		return []metav1.Condition{{Type: authv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: authv1alpha1.ReasonValid, Message: msg, ObservedGeneration: gen, LastTransitionTime: at}}
	}
	tests := []struct {
		name  string
		conds []metav1.Condition
		share bool // with the first object's
	}{
		{"equal", ready("the credential is in use", 1, at), true},
		{"another message", ready("the credential is not in use", 1, at), false},
		{"another generation", ready("the credential is in use", 2, at), false},
		{"another transition time", ready("the credential is in use", 1, metav1.NewTime(at.Add(time.Second))), false},
		{"another status", func() []metav1.Condition {
			c := ready("the credential is in use", 1, at)
			c[0].Status = metav1.ConditionFalse
			return c
		}(), false},
		{"one more condition", append(ready("the credential is in use", 1, at), metav1.Condition{Type: "Other"}), false},
	}
	first := &authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: "ns"}}
	first.Status.Conditions = ready("the credential is in use", 1, at)
	if _, err := stripMetadata(first); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, o := range []client.Object{&authv1alpha1.Credential{}, &authv1alpha1.APIBinding{}, &authv1alpha1.CustomAuthorizer{}} {
				o.SetName("other")
				o.SetNamespace("ns")
				conds := statusConditions(o)
				*conds = slices.Clone(tt.conds)
				if _, err := stripMetadata(o); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*conds, tt.conds) {
					t.Errorf("%T: conditions = %+v, want %+v", o, *conds, tt.conds)
				}
				if shared := &(*conds)[0] == &first.Status.Conditions[0]; shared != tt.share {
					t.Errorf("%T: shared = %t, want %t", o, shared, tt.share)
				}
			}
		})
	}
}

func statusConditions(o client.Object) *[]metav1.Condition {
	switch o := o.(type) {
	case *authv1alpha1.Credential:
		return &o.Status.Conditions
	case *authv1alpha1.APIBinding:
		return &o.Status.Conditions
	case *authv1alpha1.CustomAuthorizer:
		return &o.Status.Conditions
	}
	return nil
}

// BenchmarkCacheCredential reports what a Credential costs in the informer cache: decoded from
// the JSON the API server sends (managedFields, labels, spec, and the status Portcullis wrote),
// then transformed by stripMetadata.
func BenchmarkCacheCredential(b *testing.B) {
	const n = 20000
	decoder := serializer.NewCodecFactory(Scheme()).UniversalDeserializer()
	docs := make([][]byte, n)
	for i := range docs {
		// Statuses written during a cold start: a few hundred distinct transition seconds.
		at := time.Date(2026, 11, 23, 10, 0, i/100, 0, time.UTC).Format(time.RFC3339)
		docs[i] = fmt.Appendf(nil, `{"apiVersion":"auth.portcullis.dev/v1alpha1","kind":"Credential",`+
			`"metadata":{"name":"c-%06d","namespace":"load","uid":"%08d-0000-4000-8000-000000000000","resourceVersion":"%d","generation":1,`+
			`"creationTimestamp":"2026-11-23T09:00:00Z","labels":{"tier":"t%d"},`+
			`"managedFields":[{"manager":"kubectl","operation":"Apply","apiVersion":"auth.portcullis.dev/v1alpha1","time":"2026-11-23T09:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:secretRef":{"f:name":{}}}}}]},`+
			`"spec":{"secretRef":{"name":"k-%06d"},"metadata":{"tier":"t%d"}},`+
			`"status":{"observedGeneration":1,"appKey":"lk-%06d","boundBindings":1,`+
			`"conditions":[{"type":"Ready","status":"True","observedGeneration":1,"lastTransitionTime":"%s","reason":"Valid","message":"the credential is in use"}]}}`,
			i, i, 1000+i, i%3, i, i%3, i, at)
	}
	benchmarkCache(b, decoder, docs)
}

// benchmarkCache decodes docs and transforms them as the informer cache does, and reports
// the heap they keep, per object.
func benchmarkCache(b *testing.B, decoder runtime.Decoder, docs [][]byte) {
	b.ReportAllocs()
	var perObject float64
	for b.Loop() {
		objs := make([]any, len(docs))
		before := heapInUse()
		for i, d := range docs {
			o, _, err := decoder.Decode(d, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if objs[i], err = stripMetadata(o); err != nil {
				b.Fatal(err)
			}
		}
		perObject = float64(heapInUse()-before) / float64(len(docs))
		goruntime.KeepAlive(objs)
	}
	b.ReportMetric(perObject, "cache-B/object")
}

func heapInUse() uint64 {
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSecretSource reports what a credential Secret costs a replica: decoded from the
// protobuf the API server sends and handed by the Secret watch's store to the policy, which
// keeps a compact copy of its data (the decoded Secret is garbage at once).
func BenchmarkSecretSource(b *testing.B) {
	const n = 20000
	codecs := serializer.NewCodecFactory(Scheme())
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		b.Fatal("no protobuf serializer")
	}
	encoder := codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
	decoder := codecs.UniversalDeserializer()
	docs := make([][]byte, n)
	for i := range docs {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("k-%06d", i), Namespace: "load",
				UID: types.UID(fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)), ResourceVersion: fmt.Sprint(1000 + i),
				CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)),
				Labels:            map[string]string{authv1alpha1.CredentialSecretLabel: "true"},
				ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1"}}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{
				"appKey":    fmt.Appendf(nil, "lk-%06d", i),
				"appSecret": fmt.Appendf(nil, "secret-%06d-0123456789abcdef", i),
				"appCodes":  fmt.Appendf(nil, "LOADCODE-%06d-QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", i),
			},
		}
		var buf bytes.Buffer
		if err := encoder.Encode(s, &buf); err != nil {
			b.Fatal(err)
		}
		docs[i] = buf.Bytes()
	}
	b.ReportAllocs()
	var perSecret float64
	for b.Loop() {
		p := NewPolicy(logr.Discard())
		store := &secretStore{src: &secretSource{policy: p, synced: make(chan struct{})}, queue: newTestQueue()}
		before := heapInUse()
		for _, d := range docs {
			o, _, err := decoder.Decode(d, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := store.Add(o); err != nil {
				b.Fatal(err)
			}
		}
		perSecret = float64(heapInUse()-before) / float64(len(docs))
		goruntime.KeepAlive(p)
	}
	b.ReportMetric(perSecret, "kept-B/secret")
}
