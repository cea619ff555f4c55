// Package canary finds secret values that leaked into what an operator or a client can see:
// logs, metrics, statuses, events, responses. The secrets hygiene tests plant distinctive
// canary values and look for them, and for their encoded and truncated forms, everywhere.
package canary

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// piece is the length of the substrings looked for: a truncated or embedded copy.
const piece = 8

// Digest is the canary for a value stored hashed (a hashed AppCode): its SHA-256 in hex,
// looked for whole.
func Digest(s string) string {
	d := sha256.Sum256([]byte(s))
	return "=" + hex.EncodeToString(d[:])
}

// Forms lists what to look for: the value, its base64 and hex forms, and every 8-character
// piece of it. A Digest is looked for whole.
func Forms(v string) []string {
	if d, ok := strings.CutPrefix(v, "="); ok {
		return []string{d}
	}
	b := []byte(v)
	forms := []string{
		v,
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
	}
	for i := 0; i+piece <= len(v); i++ {
		forms = append(forms, v[i:i+piece])
	}
	return forms
}

// Leaks reports, for each canary, every source (by name) holding one of its Forms, ignoring
// case (header names are lower-cased on the way), with the text around it.
func Leaks(canaries []string, sources map[string]string) []string {
	names := make([]string, 0, len(sources))
	lower := map[string]string{}
	for n, text := range sources {
		names = append(names, n)
		lower[n] = strings.ToLower(text)
	}
	sort.Strings(names)
	var out []string
	for _, c := range canaries {
		for _, n := range names {
			text := lower[n]
			for _, f := range Forms(c) {
				if i := strings.Index(text, strings.ToLower(f)); i >= 0 {
					lo, hi := max(0, i-80), min(len(text), i+len(f)+80)
					out = append(out, fmt.Sprintf("%q leaks into %s (as %q): …%s…", c, n, f, text[lo:hi]))
					break
				}
			}
		}
	}
	return out
}

// Log collects what is written to it, for Leaks to search; it is safe for concurrent
// writers (a logger, a goroutine copying a pipe).
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
