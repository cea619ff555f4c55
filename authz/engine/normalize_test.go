package engine

import (
	"strings"
	"testing"
)

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api.example.com", "api.example.com"},
		{"API.Example.COM", "api.example.com"},
		{"api.example.com:8443", "api.example.com"},
		{"api.example.com.", "api.example.com"},
		{"api.example.com.:80", "api.example.com"},
		{"[::1]:9001", "[::1]"},
		{"[2001:DB8::1]", "[2001:db8::1]"},
		{"10.0.0.1:80", "10.0.0.1"},
		{"", "!"},
		{".", "!"},
		{"api.example.com:http", "!"},
		{"api example.com", "!"},
		{"api.example.com/x", "!"},
		{"[::1", "!"},
		{"[::1]x", "!"},
		{"a\x00b", "!"},
	}
	for _, tt := range tests {
		got, err := NormalizeHost(tt.in)
		if err != nil {
			got = "!"
		}
		if got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q (%v), want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "/", want: "/"},
		{in: "/orders/7", want: "/orders/7"},
		{in: "/orders/", want: "/orders/"},
		{in: "/%6Frders", want: "/orders"},
		{in: "/a%2db%5F%7E", want: "/a-b_~"},
		{in: "/a%20b", want: "/a%20b"},
		{in: "/a%3fb", want: "/a%3Fb"},
		{in: "/caf%C3%A9", want: "/caf%C3%A9"},
		{in: "/café", want: "/café"},
		{in: "", err: errBadPath},
		{in: "orders", err: errBadPath},
		{in: "*", err: errBadPath},
		{in: "/a//b", err: errDotSegment},
		{in: "//a", err: errDotSegment},
		{in: "/a/./b", err: errDotSegment},
		{in: "/a/../b", err: errDotSegment},
		{in: "/a/..", err: errDotSegment},
		{in: "/a/.", err: errDotSegment},
		{in: "/%2e%2e/etc", err: errDotSegment},
		{in: "/a/%2E/b", err: errDotSegment},
		{in: "/a%2Fb", err: errEncodedSep},
		{in: "/a%2fb", err: errEncodedSep},
		{in: "/a%5Cb", err: errEncodedSep},
		{in: "/a%00b", err: errEncodedSep},
		{in: "/a\\b", err: errBackslash},
		{in: "/a#b", err: errFragment},
		{in: "/a%", err: errBadEscape},
		{in: "/a%4", err: errBadEscape},
		{in: "/a%zz", err: errBadEscape},
		{in: "/a%C3", err: errBadUTF8},
		{in: "/a\xffb", err: errBadUTF8},
		{in: "/a\tb", err: errControlChar},
		{in: "/a%0Ab", err: errControlChar},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if err != tt.err || got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestNormalizePathDoesNotAllocateWhenCanonical(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath("/orders/7/items") }); n != 0 {
		t.Errorf("NormalizePath allocated %.0f times on a canonical path", n)
	}
}

// FuzzNormalizePath: never panics; the result is canonical (normalising it again changes
// nothing) and never holds what must be rejected.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/%2e%2e/", "/a%2Fb", "/%C3%A9", "/a//b", "/a?b", "/a#b", "/%", "/\\", "/%25", "/%2525"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := NormalizePath(p)
		if err != nil {
			return
		}
		again, err := NormalizePath(got)
		if err != nil || again != got {
			t.Fatalf("NormalizePath(%q) = %q, which normalises again to %q, %v", p, got, again, err)
		}
		for _, bad := range []string{"//", "/./", "/../", "#", "\\", "%2F", "%5C", "%00"} {
			if strings.Contains(got, bad) {
				t.Fatalf("NormalizePath(%q) = %q holds %q", p, got, bad)
			}
		}
		if strings.HasSuffix(got, "/.") || strings.HasSuffix(got, "/..") {
			t.Fatalf("NormalizePath(%q) = %q ends in a dot segment", p, got)
		}
	})
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"api.example.com", "API.example.com.:443", "[::1]:80", "a:b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got, err := NormalizeHost(h)
		if err != nil {
			return
		}
		if got != strings.ToLower(got) || strings.HasSuffix(got, ".") {
			t.Fatalf("NormalizeHost(%q) = %q is not normalised", h, got)
		}
	})
}
