package controllers

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

var nameCheckSeeds = []string{
	"", "a", "A", "-", ".", "_", "/", "a-b", "a.b", "a_b", "-a", "a-", ".a", "a.", "a..b", "a.-b",
	"my-name", "123-abc", "example.com", "example.com/name", "example.com/", "/name", "a/b/c",
	"auth.portcullis.dev/credential", "Example.com/name", "tier", "t0", "MyValue", "my_value",
	"a\x00", "é", "a b", "a\n", strings.Repeat("a", 63), strings.Repeat("a", 64),
	strings.Repeat("a", 253), strings.Repeat("a", 254), strings.Repeat("a.", 126) + "a",
	strings.Repeat("a", 70) + ".b", strings.Repeat("b", 250) + "/x", "x/" + strings.Repeat("y", 64),
}

// checkNames compares each fast check with the apimachinery validator it stands for.
func checkNames(t *testing.T, s string) {
	t.Helper()
	for _, c := range []struct {
		name string
		fast func(string) bool
		slow func(string) []string
	}{
		{"DNS1123Label", validDNS1123Label, validation.IsDNS1123Label},
		{"DNS1123Subdomain", validDNS1123Subdomain, validation.IsDNS1123Subdomain},
		{"QualifiedName", validLabelKey, validation.IsQualifiedName},
		{"LabelValue", validLabelValue, validation.IsValidLabelValue},
	} {
		errs := c.slow(s)
		if got, want := c.fast(s), len(errs) == 0; got != want {
			t.Errorf("%s(%q) = %v, apimachinery says %v (%v)", c.name, s, got, want, errs)
		}
	}
}

func TestNameChecks(t *testing.T) {
	for _, s := range nameCheckSeeds {
		checkNames(t, s)
	}
}

// FuzzNameChecks checks that the fast name and label checks agree with apimachinery's.
func FuzzNameChecks(f *testing.F) {
	for _, s := range nameCheckSeeds {
		f.Add(s)
	}
	f.Fuzz(checkNames)
}
