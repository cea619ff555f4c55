package compile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

func TestSortedNames(t *testing.T) {
	tests := []struct {
		names []string
		want  []string
		alias bool // the result is names itself
	}{
		{names: []string{"a"}, want: []string{"a"}, alias: true},
		{names: []string{"a", "b", "c"}, want: []string{"a", "b", "c"}, alias: true},
		{names: []string{"b", "a", "c"}, want: []string{"a", "b", "c"}},
		{names: []string{"a", "a", "b"}, want: []string{"a", "b"}},
		{names: []string{"c", "a", "c", "b"}, want: []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.names)
		got := sortedNames(in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("sortedNames(%q) = %q, want %q", tt.names, got, tt.want)
		}
		if !slices.Equal(in, tt.names) {
			t.Errorf("sortedNames(%q) changed its argument to %q", tt.names, in)
		}
		if aliased := &got[0] == &in[0]; aliased != tt.alias {
			t.Errorf("sortedNames(%q) shares its argument: %t, want %t", tt.names, aliased, tt.alias)
		}
		if cap(got) != len(got) {
			// A binding shares the list: an append must not write into the object's.
			t.Errorf("sortedNames(%q) has cap %d, len %d", tt.names, cap(got), len(got))
		}
	}
}

// TestCredentialCIDRs: spec.allowedCIDRs is parsed with the credential's input; an entry
// that is not a CIDR makes the credential invalid.
func TestCredentialCIDRs(t *testing.T) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "keys"},
		Data:       map[string][]byte{SecretKeyAppKey: []byte("key"), SecretKeyAppCodes: []byte("code-0123456789abcdef0123456789abcdef")},
	}
	data := newSecretData(secret, versionOf(secret))
	tests := []struct {
		name    string
		cidrs   []string
		allowed []string
		denied  []string
		invalid string // the message of an invalid credential
	}{
		{name: "none", allowed: []string{"10.1.2.3", "2001:db8::1", "192.0.2.1"}},
		{name: "v4, host bits set", cidrs: []string{"10.1.2.3/8"}, allowed: []string{"10.200.0.1", "::ffff:10.0.0.1"}, denied: []string{"11.0.0.1", "2001:db8::1"}},
		{name: "v4 and v6", cidrs: []string{"10.0.0.0/8", "2001:db8::/32"}, allowed: []string{"10.0.0.1", "2001:db8::1"}, denied: []string{"192.0.2.1", "2001:db9::1"}},
		{name: "not a CIDR", cidrs: []string{"10.0.0.0/8", "10.0.0.0/33"}, invalid: `allowedCIDRs: "10.0.0.0/33" is not a CIDR`},
		{name: "an address", cidrs: []string{"10.0.0.1"}, invalid: `allowedCIDRs: "10.0.0.1" is not a CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &authv1alpha1.Credential{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u"},
				Spec:       authv1alpha1.CredentialSpec{SecretRef: authv1alpha1.LocalObjectReference{Name: "keys"}, AllowedCIDRs: tt.cidrs},
			}
			c, _, reason, msg := parseCredential(types.NamespacedName{Namespace: "ns", Name: "c"}, newCredInput(o, versionOf(o)), data)
			if tt.invalid != "" {
				if c != nil || reason != authv1alpha1.ReasonSecretInvalid || msg != tt.invalid {
					t.Fatalf("parseCredential = %v, %q, %q; want invalid: %q", c, reason, msg, tt.invalid)
				}
				return
			}
			if c == nil {
				t.Fatalf("parseCredential: %s: %s", reason, msg)
			}
			for _, a := range tt.allowed {
				if !c.SourceAllowed(netip.MustParseAddr(a)) {
					t.Errorf("SourceAllowed(%s) = false", a)
				}
			}
			for _, a := range tt.denied {
				if c.SourceAllowed(netip.MustParseAddr(a)) {
					t.Errorf("SourceAllowed(%s) = true", a)
				}
			}
		})
	}
}

// TestCredentialCodes: a compiled Credential keeps no digests of its AppCodes; it reads them
// again from its Secret's data as the build that compiled it did.
func TestCredentialCodes(t *testing.T) {
	const code1, code2 = "code-one-0123456789abcdef0123456789", "code-two-0123456789abcdef0123456789"
	hashed := sha256.Sum256([]byte(code2))
	tests := []struct {
		name  string
		codes string
		want  [][sha256.Size]byte
	}{
		{name: "none"},
		{name: "one", codes: code1, want: [][sha256.Size]byte{sha256.Sum256([]byte(code1))}},
		{name: "lines, blanks, repeats, a hashed one", codes: "\n " + code1 + " \n\nsha256:" + hex.EncodeToString(hashed[:]) + "\n" + code2 + "\n" + code1,
			want: [][sha256.Size]byte{sha256.Sum256([]byte(code1)), hashed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := &corev1.Secret{Data: map[string][]byte{SecretKeyAppKey: []byte("key"), SecretKeyAppSecret: []byte("0123456789abcdef")}}
			if tt.codes != "" {
				secret.Data[SecretKeyAppCodes] = []byte(tt.codes)
			}
			o := &authv1alpha1.Credential{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}}
			c, codes, reason, msg := parseCredential(types.NamespacedName{Namespace: "ns", Name: "c"}, newCredInput(o, versionOf(o)), newSecretData(secret, 0))
			if c == nil {
				t.Fatalf("parseCredential: %s: %s", reason, msg)
			}
			if !slices.Equal(codes, tt.want) {
				t.Errorf("parseCredential's codes = %x, want %x", codes, tt.want)
			}
			prefix := [][sha256.Size]byte{{1}}
			if got := c.appendCodes(slices.Clone(prefix)); !slices.Equal(got, append(prefix, tt.want...)) {
				t.Errorf("appendCodes = %x, want %x after the prefix", got, tt.want)
			}
			if string(c.Secret()) != "0123456789abcdef" {
				t.Errorf("Secret() = %q", c.Secret())
			}
		})
	}
}

// TestPathIndex: a host's paths are a list up to smallPaths, then maps; either way each
// path, Exact or PathPrefix, finds the routes added for it and no other's.
func TestPathIndex(t *testing.T) {
	for _, n := range []int{1, smallPaths, smallPaths + 1, 4 * smallPaths} {
		var x pathIndex
		sets := map[pathRoutes]*routeSet{}
		for i := range n {
			exact := i%2 == 0
			p := pathRoutes{path: fmt.Sprintf("/p%d", i/2), exact: exact}
			s := x.add(p.path, exact, n-i)
			if again := x.add(p.path, exact, n-i); again != s {
				t.Fatalf("n=%d: adding %+v again made a new set", n, p)
			}
			sets[p] = s
		}
		if many := x.prefix != nil; many != (len(sets) > smallPaths) || (many && x.few != nil) {
			t.Errorf("n=%d: %d paths kept as maps: %t (a list of %d)", n, len(sets), many, len(x.few))
		}
		for p, s := range sets {
			if got := x.get(p.path, p.exact); got != s {
				t.Errorf("n=%d: get(%q, %t) = %p, want %p", n, p.path, p.exact, got, s)
			}
			if other := (pathRoutes{path: p.path, exact: !p.exact}); sets[other] == nil && x.get(p.path, !p.exact) != nil {
				t.Errorf("n=%d: get(%q, %t) found the routes of the other match", n, p.path, !p.exact)
			}
		}
		if x.get("/missing", false) != nil || x.get("/missing", true) != nil {
			t.Errorf("n=%d: found a path never added", n)
		}
		seen := 0
		for _, exact := range []bool{true, false} {
			x.each(exact, func(path string, s *routeSet) {
				if sets[pathRoutes{path: path, exact: exact}] != s {
					t.Errorf("n=%d: each(%t) gave %q and a set not added for it", n, exact, path)
				}
				seen++
			})
		}
		if seen != len(sets) {
			t.Errorf("n=%d: each gave %d paths, want %d", n, seen, len(sets))
		}
	}
}
