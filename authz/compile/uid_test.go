package compile

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestObjectUID(t *testing.T) {
	tests := []struct {
		uid     types.UID
		compact bool // kept as 16 bytes
	}{
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"ffffffff-ffff-8fff-bfff-ffffffffffff", true},
		{"6BA7B810-9DAD-11D1-80B4-00C04FD430C8", false}, // upper case would not come back as given
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c", false},  // short
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c89", false},
		{"6ba7b8109-dad-11d1-80b4-00c04fd430c8", false}, // a dash out of place
		{"6ba7b810-9dad-11d1-80b4x00c04fd430c8", false},
		{"6ba7b810-9dad-11d1-80b4-00c04fd430cg", false}, // not hex
		{"{6ba7b810-9dad-11d1-80b4-00c04fd430c}", false},
		{"uid-c1", false},
		{"", false},
	}
	for _, tt := range tests {
		id := uidOf(tt.uid)
		if compact := id.other == nil; compact != tt.compact {
			t.Errorf("uidOf(%q) kept as 16 bytes: %v, want %v", tt.uid, compact, tt.compact)
		}
		if got := id.text(); got != tt.uid {
			t.Errorf("uidOf(%q).text() = %q", tt.uid, got)
		}
		if got := string(id.appendText([]byte("x"))); got != "x"+string(tt.uid) {
			t.Errorf("uidOf(%q).appendText(\"x\") = %q", tt.uid, got)
		}
		if got := id.textLen(); got != len(tt.uid) {
			t.Errorf("uidOf(%q).textLen() = %d, want %d", tt.uid, got, len(tt.uid))
		}
	}
}

func FuzzObjectUID(f *testing.F) {
	f.Add("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	f.Add("uid-c1")
	f.Fuzz(func(t *testing.T, s string) {
		id := uidOf(types.UID(s))
		if got := string(id.appendText(nil)); got != s || id.textLen() != len(s) {
			t.Fatalf("uidOf(%q) gives back %q (length %d)", s, got, id.textLen())
		}
	})
}

// TestObjectUIDKey checks that the key form of a UID tells UIDs apart, among them a UUID and
// a 17-byte text equal to its key form.
func TestObjectUIDKey(t *testing.T) {
	uuid := uidOf("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	uids := []objectUID{
		uuid,
		uidOf(types.UID(uuid.appendKey(nil))),
		uidOf("6ba7b810-9dad-11d1-80b4-00c04fd430c9"),
		uidOf("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"),
		uidOf(""),
		uidOf("uid-c1"),
		uidOf("uid-c"),
	}
	seen := map[string]int{}
	for i, id := range uids {
		k := string(id.appendKey([]byte("x")))
		if j, dup := seen[k]; dup {
			t.Errorf("UIDs %q and %q have the same key %q", uids[j].text(), id.text(), k)
		}
		seen[k] = i
		if len(k)-1 > 5+id.textLen() {
			t.Errorf("the key of %q is %d bytes, past 5 + its length", id.text(), len(k)-1)
		}
	}
}

func TestObjectUIDOfAUUIDAllocatesNothing(t *testing.T) {
	u := types.UID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if n := testing.AllocsPerRun(100, func() { _ = uidOf(u) }); n != 0 {
		t.Errorf("uidOf(a UUID) makes %v allocations, want 0", n)
	}
}
