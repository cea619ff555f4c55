package compile_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
)

// fuzzHosts are the binding hosts of the host-matcher fuzz world: exact names, nested
// wildcards (the longest suffix must win), a wildcard next to an exact name it covers, and
// a one-label wildcard.
var fuzzHosts = []string{
	"api.example.com", "example.com", "*.example.com", "*.eu.example.com", "x.eu.example.com",
	"*.b.c", "a.b.c", "*.org", "xn--bcher-kva.example", "under_score.example",
}

// crdHost is the CRD's pattern for a binding host (as in validate_test.go).
var crdHost = regexp.MustCompile(`^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func hostBinding(i int, hosts ...string) client.Object {
	return &authv1alpha1.APIBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "APIBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%d", i), Namespace: "h", UID: types.UID(fmt.Sprintf("uid-b%d", i)),
			Generation: 1, CreationTimestamp: metav1.NewTime(epoch.Add(-time.Duration(len(fuzzHosts)-i) * time.Second))},
		Spec: authv1alpha1.APIBindingSpec{
			Hosts:     hosts,
			Routes:    []authv1alpha1.Route{{Path: "/"}},
			Anonymous: true,
		},
	}
}

// expectHost is the reference matcher: the exact name, else the longest wildcard whose
// suffix ends the host at a label boundary (one or more whole labels before it), else "".
func expectHost(exact map[string]bool, wild []string, h string) string {
	if exact[h] {
		return h
	}
	best := ""
	for _, w := range wild {
		if strings.HasSuffix(h, "."+w) && len(w) > len(best) {
			best = w
		}
	}
	if best == "" {
		return ""
	}
	return "*." + best
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzHostLookup: the snapshot's host matcher, fed the way the engine feeds it (a raw
// :authority normalised by engine.NormalizeHost), against a reference matcher. A match names
// the normalised host itself or a wildcard whose suffix ends it at a label boundary with
// whole non-empty labels before it: never the wildcard's apex, never across a label (so
// "*.example.com" matches neither "example.com", "badexample.com" nor ".example.com"). The
// longest wildcard wins, an exact name beats every wildcard, and case, a port and a trailing
// dot never change the answer. extra is one more binding host (used when the CRD would accept
// it), so the table is fuzzed too.
func FuzzHostLookup(f *testing.F) {
	for _, s := range [][2]string{
		{"", "api.example.com"}, {"", "API.Example.COM:443"}, {"", "example.com."}, {"", ".example.com"},
		{"", "a..example.com"}, {"", "x.example.com"}, {"", "a.b.eu.example.com"}, {"", "eu.example.com"},
		{"", "badexample.com"}, {"*.badexample.com", "x.badexample.com"}, {"*.api.example.com", "v1.api.example.com"},
		{"", "b.c"}, {"", "..b.c"}, {"", "org"}, {"", "[::1]:9001"}, {"", "[::1"}, {"", "example.com.."},
		{"*.x.eu.example.com", "y.x.eu.example.com"}, {"*.com", "example.com"}, {"", "10.0.0.1:80"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, extra, raw string) {
		hosts := fuzzHosts
		if crdHost.MatchString(extra) && len(extra) <= 253 {
			hosts = append(hosts[:len(hosts):len(hosts)], extra)
		}
		objs := make([]client.Object, len(hosts))
		exact := map[string]bool{}
		var wild []string
		for i, h := range hosts {
			objs[i] = hostBinding(i, h)
			if w, ok := strings.CutPrefix(h, "*."); ok {
				wild = append(wild, w)
			} else {
				exact[h] = true
			}
		}
		snap, _ := compile.Build(inputsFrom(objs), nil)
		for h := range exact {
			if tb := snap.Host(h); tb == nil || tb.Host != h {
				t.Fatalf("binding host %q is not in the snapshot", h)
			}
		}

		h, err := engine.NormalizeHost(raw)
		if err != nil {
			return
		}
		if again, err := engine.NormalizeHost(asciiUpper(raw)); err != nil || again != h {
			t.Fatalf("NormalizeHost(%q) = %q but the upper-cased %q gives %q, %v", raw, h, asciiUpper(raw), again, err)
		}
		var got string
		if tb := snap.Host(h); tb != nil {
			got = tb.Host
		}
		if want := expectHost(exact, wild, h); got != want {
			t.Fatalf("Host(%q) (from %q) = %q, want %q", h, raw, got, want)
		}
		if w, ok := strings.CutPrefix(got, "*."); ok {
			labels, _ := strings.CutSuffix(h, "."+w)
			if labels == "" || labels == h || strings.HasPrefix(labels, ".") || strings.HasSuffix(labels, ".") || strings.Contains(labels, "..") {
				t.Fatalf("Host(%q) (from %q) = %q: the wildcard matched its apex or across a label (labels %q)", h, raw, got, labels)
			}
		}
		r := snap.Lookup(h, "/", compile.MethodGET)
		if (r == nil) != (got == "") {
			t.Fatalf("Lookup(%q, /) = %v but Host = %q", h, r, got)
		}
	})
}
