package compile

import (
	"slices"
	"testing"
)

func TestRefs(t *testing.T) {
	build := func(names ...string) refs {
		var r refs
		for _, n := range names {
			r = r.with(n, false)
		}
		return r
	}
	tests := []struct {
		name  string
		start []string
		drop  string
		found bool
		want  []string
	}{
		{"only name", []string{"a"}, "a", true, nil},
		{"absent from one", []string{"a"}, "b", false, []string{"a"}},
		{"absent from none", nil, "a", false, nil},
		{"first of two", []string{"a", "b"}, "a", true, []string{"b"}},
		{"second of two", []string{"a", "b"}, "b", true, []string{"a"}},
		{"first of three", []string{"a", "b", "c"}, "a", true, []string{"b", "c"}},
		{"middle of three", []string{"a", "b", "c"}, "b", true, []string{"a", "c"}},
		{"last of three", []string{"a", "b", "c"}, "c", true, []string{"a", "b"}},
		{"absent from three", []string{"a", "b", "c"}, "d", false, []string{"a", "b", "c"}},
		{"the empty name is never held", []string{"a"}, "", false, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := build(tt.start...)
			if got := slices.Collect(r.all()); !slices.Equal(got, tt.start) {
				t.Fatalf("all = %q, want %q", got, tt.start)
			}
			for _, n := range tt.start {
				if !r.contains(n) {
					t.Errorf("contains(%q) = false", n)
				}
			}
			if len(tt.start) > 0 && r.last() != tt.start[len(tt.start)-1] {
				t.Errorf("last = %q, want %q", r.last(), tt.start[len(tt.start)-1])
			}
			rest, found := r.without(tt.drop)
			if found != tt.found {
				t.Errorf("without(%q) found = %t, want %t", tt.drop, found, tt.found)
			}
			if got := slices.Collect(rest.all()); !slices.Equal(got, tt.want) {
				t.Errorf("without(%q) = %q, want %q", tt.drop, got, tt.want)
			}
			if rest.contains(tt.drop) && tt.drop != "" {
				t.Errorf("without(%q) still contains it", tt.drop)
			}
			// r is shared with a published snapshot: neither without nor with may change it.
			_ = rest.with("z", false)
			_ = r.with("y", false)
			if got := slices.Collect(r.all()); !slices.Equal(got, tt.start) {
				t.Errorf("after without and with, r = %q, want %q unchanged", got, tt.start)
			}
		})
	}
}

// In place (a full build), with appends to r's own slice rather than copying it.
func TestRefsInPlace(t *testing.T) {
	var r refs
	for _, n := range []string{"a", "b", "c", "d"} {
		r = r.with(n, true)
	}
	if got := slices.Collect(r.all()); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("all = %q", got)
	}
	more := r.more
	r = r.with("e", true)
	if r.more != more || len(*more) != 4 {
		t.Errorf("with in place made a new slice (%p, was %p) or did not grow it (%d names)", r.more, more, len(*more))
	}
}
