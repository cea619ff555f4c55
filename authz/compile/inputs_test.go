package compile

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

func TestSecretData(t *testing.T) {
	long := bytes.Repeat([]byte("v"), 300) // a two-byte length
	longKey := strings.Repeat("k", 200)
	tests := []struct {
		name string
		data map[string][]byte
	}{
		{"no data", nil},
		{"one item", map[string][]byte{"appKey": []byte("k1")}},
		{"credential", map[string][]byte{"appKey": []byte("k1"), "appSecret": []byte("0123456789abcdef"), "appCodes": []byte("A\nB")}},
		{"empty value and long items", map[string][]byte{"empty": {}, "long": long, longKey: []byte("x")}},
		{"tagged and other keys", map[string][]byte{"appKey": []byte("k1"), "appKeys": []byte("other"), "": []byte("empty key"), "data": {}, "appCodes": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testSecretData(t, newSecretData(&corev1.Secret{Data: tt.data}, 0), tt.data)
		})
	}
}

func testSecretData(t *testing.T, d *secretData, data map[string][]byte) {
	t.Helper()
	if n := secretDataLen(data); len(d.data) != n {
		t.Errorf("the data was sized for %d bytes and holds %d", n, len(d.data))
	}
	for k, want := range data {
		got, ok := d.get(k)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("get(%q) = %q, %v; want %q, true", k, got, ok, want)
		}
		if cap(got) != len(got) {
			t.Errorf("get(%q) has capacity %d past its length %d: an append would overwrite the next item", k, cap(got), len(got))
		}
	}
	for _, k := range []string{"missing", "appKe", "appKeyX", "", "appSecret"} {
		if _, in := data[k]; in {
			continue
		}
		if got, ok := d.get(k); ok {
			t.Errorf("get(%q) = %q, true; want no value", k, got)
		}
	}
}

func TestVersion(t *testing.T) {
	meta := func(uid, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}}
	}
	tests := []struct {
		name  string
		a, b  *corev1.Secret
		equal bool
	}{
		{"same UID and resourceVersion", meta("u1", "7"), meta("u1", "7"), true},
		{"another resourceVersion", meta("u1", "7"), meta("u1", "8"), false},
		{"another UID", meta("u1", "7"), meta("u2", "7"), false},
		{"the boundary moved", meta("u1", "27"), meta("u12", "7"), false},
		{"no resourceVersion", meta("u1", ""), meta("u1", ""), true}, // both zero: see Set
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.a) == versionOf(tt.b); got != tt.equal {
				t.Errorf("versionOf(a) == versionOf(b) is %v, want %v", got, tt.equal)
			}
		})
	}
	if v := versionOf(meta("u1", "")); v != 0 {
		t.Errorf("the version of an object without a resourceVersion is %v, want zero", v)
	}
}

// TestSetSkipsSameVersion: a replacement is ignored only when it has the UID and the
// resourceVersion of the object it replaces, and never without a resourceVersion.
func TestSetSkipsSameVersion(t *testing.T) {
	cred := func(uid, rv string) *authv1alpha1.Credential {
		return &authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: types.UID(uid), ResourceVersion: rv}}
	}
	secret := func(uid, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", UID: types.UID(uid), ResourceVersion: rv}}
	}
	steps := []struct {
		obj  client.Object
		want bool
	}{
		{cred("u1", "1"), true},
		{cred("u1", "1"), false},
		{cred("u1", "2"), true},
		{cred("u2", "2"), true}, // deleted and created again
		{cred("u2", ""), true},
		{cred("u2", ""), true},
		{secret("u1", "1"), true},
		{secret("u1", "1"), false},
		{secret("u1", "2"), true},
		{secret("u1", ""), true},
		{secret("u1", ""), true},
	}
	in := NewInputs()
	for i, s := range steps {
		if got := in.Set(s.obj); got != s.want {
			t.Errorf("step %d: Set(%T UID %s resourceVersion %q) = %v, want %v", i, s.obj, s.obj.GetUID(), s.obj.GetResourceVersion(), got, s.want)
		}
	}
}

// TestCredInput checks that a credential reads from its compact input what it read from the
// Credential object: the reference below is the code that read the object.
func TestCredInput(t *testing.T) {
	at := func(s string) *metav1.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Time{Time: tm}
	}
	zero := &metav1.Time{}
	tests := []struct {
		name     string
		disabled bool
		expires  *metav1.Time
		created  metav1.Time
	}{
		{"plain", false, nil, *at("2026-01-02T03:04:05Z")},
		{"disabled", true, nil, *at("2026-01-02T03:04:05.5Z")},
		{"expires", false, at("2026-06-01T00:00:00.000000001Z"), metav1.Time{}},
		{"expires far away", false, at("9999-12-31T23:59:59Z"), *at("2026-01-02T03:04:05Z")},
		{"expired long ago", false, at("0001-01-01T00:00:01Z"), *at("2026-01-02T03:04:05Z")},
		{"expiresAt the zero time", false, zero, *at("2026-01-02T03:04:05Z")},
		{"disabled and expires", true, at("2026-06-01T00:00:00Z"), *at("1970-01-01T00:00:00Z")},
	}
	nows := []time.Time{
		at("2026-05-31T23:59:59.999999999Z").Time, at("2026-06-01T00:00:00Z").Time,
		at("2026-06-01T00:00:00.000000001Z").Time, at("2026-06-01T00:00:00.000000002Z").Time,
		at("2300-01-01T00:00:00Z").Time, {},
	}
	objs := make([]*authv1alpha1.Credential, len(tests))
	for i, tt := range tests {
		o := &authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: tt.name, UID: types.UID("uid-" + tt.name), Generation: int64(i + 1),
			CreationTimestamp: tt.created, Labels: map[string]string{"tier": "gold"},
		}}
		o.Spec.SecretRef.Name = "keys-" + tt.name
		o.Spec.Disabled, o.Spec.ExpiresAt = tt.disabled, tt.expires
		o.Spec.Metadata = map[string]string{"team": tt.name}
		if i%2 == 0 {
			o.Spec.AllowedCIDRs = []string{"10.0.0.0/8"}
		}
		uuid := i%3 == 0
		if uuid { // as the API server makes them; kept as 16 bytes
			o.UID = types.UID(fmt.Sprintf("123e4567-e89b-12d3-a456-4266141740%02x", i))
		}
		objs[i] = o
		t.Run(tt.name, func(t *testing.T) {
			in := newCredInput(o, versionOf(o))
			if rare := uuid && len(o.Spec.AllowedCIDRs) == 0; (in.rare == nil) != rare {
				t.Errorf("input.rare = %+v for UID %q and allowedCIDRs %q", in.rare, o.UID, o.Spec.AllowedCIDRs)
			}
			c := NewCredential(o, "key", nil)
			if c.Name() != o.Name || c.UID() != o.UID || c.Metadata()["team"] != tt.name || c.Namespace() != o.Namespace {
				t.Errorf("Name, UID, Metadata, Namespace = %q, %q, %v, %q", c.Name(), c.UID(), c.Metadata(), c.Namespace())
			}
			if in.secretName != o.Spec.SecretRef.Name || in.generation != o.Generation || in.labels["tier"] != "gold" ||
				(in.allowedCIDRs() == nil) != (len(o.Spec.AllowedCIDRs) == 0) ||
				(in.allowedCIDRs() != nil && !slices.Equal(in.allowedCIDRs().prefixes, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})) {
				t.Errorf("input = %+v", in)
			}
			if c.Disabled() != o.Spec.Disabled {
				t.Errorf("Disabled() = %v", c.Disabled())
			}
			var wantExpiry time.Time
			if e := o.Spec.ExpiresAt; e != nil {
				wantExpiry = e.Time
			}
			if got := c.ExpiresAt(); !got.Equal(wantExpiry) || got.IsZero() != wantExpiry.IsZero() {
				t.Errorf("ExpiresAt() = %v, want %v", got, wantExpiry)
			}
			for _, now := range nows {
				e := o.Spec.ExpiresAt
				want := !o.Spec.Disabled && (e == nil || now.Before(e.Time))
				if got := c.Usable(now); got != want {
					t.Errorf("Usable(%v) = %v, want %v", now, got, want)
				}
			}
		})
	}
	for _, x := range objs {
		for _, y := range objs {
			want := 0
			switch {
			case older(x, y):
				want = -1
			case older(y, x):
				want = 1
			}
			b := &builder{in: NewInputs()}
			b.in.Set(x)
			b.in.Set(y)
			if got := b.credAge(nnOf(x), nnOf(y)); got != want {
				t.Errorf("credAge(%s, %s) = %d, want %d", x.Name, y.Name, got, want)
			}
		}
	}
}

func TestPrepareNew(t *testing.T) {
	expires := metav1.NewTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	cred := func(uid, rv string) *authv1alpha1.Credential {
		return &authv1alpha1.Credential{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: types.UID(uid), ResourceVersion: rv},
			Spec:       authv1alpha1.CredentialSpec{SecretRef: authv1alpha1.LocalObjectReference{Name: "s-" + rv}, ExpiresAt: &expires},
		}
	}
	in := NewInputs()
	in.Set(cred("u1", "1"))
	steps := []struct {
		name       string
		obj        client.Object
		wantSet    bool   // SetPrepared changes the set
		wantSecret string // the credential's secret name afterwards
	}{
		{"unchanged: only the name is kept, and setting it changes nothing", cred("u1", "1"), false, "s-1"},
		{"a new resourceVersion", cred("u1", "2"), true, "s-2"},
		{"no resourceVersion is never unchanged", cred("u1", ""), true, "s-"},
		{"a new object", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s-2", UID: "u9", ResourceVersion: "1"}}, true, "s-"},
	}
	for _, s := range steps {
		p, ok := in.PrepareNew(s.obj)
		if !ok {
			t.Fatalf("%s: PrepareNew(%T) = _, false", s.name, s.obj)
		}
		if want, _ := KeyOf(s.obj); p.Key() != want {
			t.Errorf("%s: Key() = %v, want %v", s.name, p.Key(), want)
		}
		if kept := p.obj != nil; kept != s.wantSet {
			t.Errorf("%s: the prepared form holds the object: %v, want %v", s.name, kept, s.wantSet)
		}
		if got := in.SetPrepared(p); got != s.wantSet {
			t.Errorf("%s: SetPrepared = %v, want %v", s.name, got, s.wantSet)
		}
		if got := in.credentials.get(types.NamespacedName{Namespace: "ns", Name: "c"}).secretName; got != s.wantSecret {
			t.Errorf("%s: the credential names Secret %q, want %q", s.name, got, s.wantSecret)
		}
	}

	p, _ := Prepare(cred("u1", "3"))
	if at, ok := p.ExpiresAt(); !ok || !at.Equal(expires.Time) {
		t.Errorf("ExpiresAt() = %v, %v; want %v, true", at, ok, expires.Time)
	}
	p, _ = Prepare(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}})
	if at, ok := p.ExpiresAt(); ok {
		t.Errorf("a Secret's ExpiresAt() = %v, true; want false", at)
	}
	if _, ok := Prepare(&corev1.ConfigMap{}); ok {
		t.Error("Prepare(ConfigMap) = _, true; want false")
	}
	if _, ok := in.PrepareNew(&corev1.ConfigMap{}); ok {
		t.Error("PrepareNew(ConfigMap) = _, true; want false")
	}
}

// FuzzSecretData checks that a Secret's data reads back as written, whatever its keys.
func FuzzSecretData(f *testing.F) {
	f.Add("appKey", "k1", "appCodes", "A\nB", "", "x")
	f.Add("data", "", "appKeys", "v", "appSecret", "0123456789abcdef")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		data := map[string][]byte{k1: []byte(v1), k2: []byte(v2), k3: []byte(v3)}
		testSecretData(t, newSecretData(&corev1.Secret{Data: data}, 0), data)
	})
}
