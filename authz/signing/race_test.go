//go:build race

package signing

// sync.Pool drops items at random under the race detector, so allocation counts mean nothing.
func init() { raceEnabled = true }
