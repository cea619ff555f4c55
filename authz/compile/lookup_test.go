package compile_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

func TestLookup(t *testing.T) {
	data, err := os.ReadFile("testdata/precedence.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The same world, its api.example.com holding more paths than a list keeps (the routes
	// added match none of the requests below).
	var padding strings.Builder
	padding.WriteString("---\napiVersion: auth.portcullis.dev/v1alpha1\nkind: APIBinding\nmetadata: {name: padding, namespace: p}\nspec:\n  hosts: [api.example.com]\n  anonymous: true\n  routes:\n")
	for i := range 12 {
		fmt.Fprintf(&padding, "  - {path: /padding/%d, match: Exact}\n  - {path: /padding/%d}\n", i, i)
	}
	worlds := map[string][]byte{"few paths": data, "many paths": append(append([]byte{}, data...), padding.String()...)}
	tests := []struct {
		host, path, method string
		want               string // "<binding>#<route>", or "" for no match
	}{
		{"api.example.com", "/", "GET", "p/root#0"},
		{"api.example.com", "/anything/else", "POST", "p/root#0"},
		{"api.example.com", "/orders", "GET", "p/orders-read#0"},
		{"api.example.com", "/orders", "POST", "p/orders-any#0"},
		{"api.example.com", "/orders/", "HEAD", "p/orders-read#0"},
		{"api.example.com", "/orders/7", "GET", "p/orders-any#1"},   // Exact beats a longer-method prefix
		{"api.example.com", "/orders/7/", "GET", "p/orders-read#0"}, // Exact is exact: the trailing slash differs
		{"api.example.com", "/orders/8", "GET", "p/orders-read#0"},
		{"api.example.com", "/ordersX", "GET", "p/root#0"}, // segment-aware: /orders does not cover /ordersX
		{"api.example.com", "/orders/admin/x", "DELETE", "p/orders-admin#0"},
		{"api.example.com", "/orders/admin/x", "GET", "p/orders-read#0"}, // method mismatch falls to a shorter prefix
		{"api.example.com", "/orders/admin", "PROPFIND", "p/orders-any#0"},
		{"x.example.com", "/a", "GET", "p/wild-short#0"},
		{"a.b.example.com", "/a", "GET", "p/wild-short#0"}, // one or more labels
		{"example.com", "/", "GET", ""},                    // never the apex
		{"x.eu.example.com", "/v1/x", "GET", "p/wild-long#0"},
		{"x.eu.example.com", "/v2", "GET", ""}, // the longest wildcard decides the host; no fallback
		{"eu.example.com", "/v2", "GET", "p/wild-short#0"},
		{"other.org", "/", "GET", ""},
	}
	for name, world := range worlds {
		snap, _ := compile.Build(inputsFrom(decode(t, world)), nil)
		if name == "many paths" && len(snap.Host("api.example.com").Routes()) < 24 {
			t.Fatalf("the padding routes are not in: %s", snap.Describe())
		}
		for _, tt := range tests {
			t.Run(name+"/"+tt.host+tt.path+" "+tt.method, func(t *testing.T) {
				var got string
				if r := snap.Lookup(tt.host, tt.path, compile.ParseMethod(tt.method)); r != nil {
					got = fmt.Sprintf("%s#%d", r.Binding.Ref, r.Index)
				}
				if got != tt.want {
					t.Errorf("Lookup(%s, %s, %s) = %q, want %q", tt.host, tt.path, tt.method, got, tt.want)
				}
			})
		}
	}
}

func TestCredentialIndexes(t *testing.T) {
	data, err := os.ReadFile("testdata/conflicts.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := compile.Build(inputsFrom(decode(t, data)), nil)
	tests := []struct {
		name string
		got  *compile.Credential
		want string
	}{
		{"older keeps the appKey", snap.CredentialByAppKey("shared-key"), "c/older"},
		{"unknown appKey", snap.CredentialByAppKey("nope"), ""},
		{"older keeps the AppCode", snap.CredentialByAppCode(sha256.Sum256([]byte("BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"))), "c/code-owner"},
		{"the loser of a code loses its appKey too", snap.CredentialByAppKey("another-key"), ""},
	}
	for _, tt := range tests {
		var got string
		if tt.got != nil {
			got = tt.got.Ref
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	// An entry keeps a list of its claims only when they are more than its owner.
	const claims = `AppCode 0bd73af61dd0 owner=c/code-owner claims=[c/code-owner c/code-copier] list=true
appKey another-key owner=- claims=[c/code-copier] list=true
appKey own-key owner=c/code-owner claims=[c/code-owner] list=false
appKey shared-key owner=c/older claims=[c/older c/newer] list=true
`
	if got := snap.Claims(); got != claims {
		t.Errorf("claims:\n%s", lineDiff(claims, got))
	}
}
