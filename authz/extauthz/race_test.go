//go:build race

package extauthz

// The race detector's instrumentation moves values to the heap, so allocation counts mean
// nothing.
func init() { raceEnabled = true }
