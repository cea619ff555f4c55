package compile

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// SetBuildWorkers makes full builds use workers goroutines whatever their size, until the
// returned function restores the default (for TestParallelFullBuild).
func SetBuildWorkers(workers int) (restore func()) {
	f := buildWorkers
	buildWorkers = func(int) int { return workers }
	return func() { buildWorkers = f }
}

// Claims renders every entry of the appKey and AppCode indexes, whether or not a credential
// may use it: its owner, its claims, and whether it keeps a list of them (for
// TestIncrementalMatchesFull: an incremental build must keep no entry that a full build would
// not make, such as one whose last claim is gone, and no list the compact form drops).
func (s *Snapshot) Claims() string {
	var lines []string
	line := func(key string, o owned) {
		owner := "-"
		if o.cred != nil {
			owner = o.cred.Ref
		}
		lines = append(lines, fmt.Sprintf("%s owner=%s claims=%v list=%t", key, owner, o.claims(), o.list != nil))
	}
	s.appKeys.Range(func(k string, o owned) bool { line("appKey "+k, o); return true })
	s.appCodes.Range(func(d [32]byte, o owned) bool { line("AppCode "+hex.EncodeToString(d[:6]), o); return true })
	// A list kept for a key no longer claimed would be in neither build's lines above.
	s.appKeys.contested.Range(func(k string, _ *[]nn) bool {
		if _, ok := s.appKeys.owners.Get(k); !ok {
			lines = append(lines, "appKey "+k+" has a list but no entry")
		}
		return true
	})
	s.appCodes.contested.Range(func(d [32]byte, _ *[]nn) bool {
		if _, ok := s.appCodes.owners.Get(d); !ok {
			lines = append(lines, "AppCode "+hex.EncodeToString(d[:6])+" has a list but no entry")
		}
		return true
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
