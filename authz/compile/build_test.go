package compile

import (
	"slices"
	"testing"
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
