package jsonstr

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestAppendMatchesEncodingJSON: Append writes what encoding/json writes, HTML escaping off.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	var every strings.Builder
	for c := range 0x80 {
		every.WriteByte(byte(c))
	}
	tests := []string{
		"", "plain", `say "no"`, `back\slash`, "<a href='x'>&amp;</a>", every.String(),
		"tab\tnewline\nreturn\rform\fbackspace\b", "nul\x00del\x7f",
		"é ü 日本 🙂", "line\u2028para\u2029end", "bad \xff\xfe utf8", "cut \xe6\x97", "\xed\xa0\x80 surrogate",
	}
	for _, s := range tests {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := Append([]byte("prefix"), s); string(got) != "prefix"+strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("Append(%q) = %s, want %s", s, got[len("prefix"):], want.Bytes())
		}
	}
}

func TestHex4(t *testing.T) {
	tests := []struct {
		in   string
		want rune
		ok   bool
	}{
		{"0000", 0, true},
		{"00e9", 0xe9, true},
		{"D83D", 0xd83d, true},
		{"fFfF", 0xffff, true},
		{"12345", 0x1234, true}, // only the first four
		{"123", 0, false},
		{"", 0, false},
		{"12g4", 0, false},
		{"-123", 0, false},
	}
	for _, tt := range tests {
		if r, ok := Hex4([]byte(tt.in)); r != tt.want || ok != tt.ok {
			t.Errorf("Hex4(%q) = %#x, %v; want %#x, %v", tt.in, r, ok, tt.want, tt.ok)
		}
	}
}

// TestUnescape: every two-character escape decodes as encoding/json decodes it, and no other
// byte makes one.
func TestUnescape(t *testing.T) {
	for e := range 256 {
		var want string
		err := json.Unmarshal([]byte(`"\`+string(rune(e))+`"`), &want)
		if e == 'u' {
			err = errors.New(`\u takes four hex digits`) // not a two-character escape
		}
		c, ok := Unescape(byte(e))
		if ok != (err == nil) || ok && string(rune(c)) != want {
			t.Errorf("Unescape(%q) = %q, %v; encoding/json: %q, %v", rune(e), c, ok, want, err)
		}
	}
}
