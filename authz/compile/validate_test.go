package compile

import (
	"regexp"
	"strings"
	"testing"
)

// The CRD's own patterns: the hand-written validators must agree with them on every input.
var (
	refHost = regexp.MustCompile(`^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	refPath = regexp.MustCompile(`^/[A-Za-z0-9/._~!$&'()*+,;=:@-]*$`)
)

func refCanonicalPath(p string) bool {
	if len(p) > 1024 || !refPath.MatchString(p) || strings.Contains(p, "//") {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func FuzzValidHost(f *testing.F) {
	for _, s := range []string{"api.example.com", "*.example.com", "*.", "*", "a..b", "-a.com", "a-.com", "A.com",
		"a.*.b", "x", "*.x", "a_b.com", "example.com.", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com",
		strings.Repeat("a.", 126) + "a", "xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		want := len(h) <= 253 && refHost.MatchString(h)
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %t, the pattern says %t", h, got, want)
		}
	})
}

func FuzzCanonicalRoutePath(f *testing.F) {
	for _, s := range []string{"/", "/orders", "/orders/", "/a//b", "/a/./b", "/a/../b", "/a/..", "/a/.", "/..",
		"/a%2Fb", "/a?b", "/a#b", `/a\b`, "/a b", "a", "", "/ü", "/a:b@c", "/.well-known/x", "/..a", "/a.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := CanonicalRoutePath(p), refCanonicalPath(p); got != want {
			t.Errorf("CanonicalRoutePath(%q) = %t, the reference says %t", p, got, want)
		}
	})
}
