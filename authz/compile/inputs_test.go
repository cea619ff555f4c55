package compile

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSecretData(t *testing.T) {
	long := bytes.Repeat([]byte("v"), 300) // a two-byte length
	longKey := strings.Repeat("k", 200)
	tests := []struct {
		name string
		data map[string][]byte
	}{
		{"no data", nil},
		{"one item", map[string][]byte{"appKey": []byte("k1")}},
		{"credential", map[string][]byte{"appKey": []byte("k1"), "appSecret": []byte("0123456789abcdef"), "appCodes": []byte("A\nB")}},
		{"empty value and long items", map[string][]byte{"empty": {}, "long": long, longKey: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newSecretData(&corev1.Secret{Data: tt.data})
			for k, want := range tt.data {
				got, ok := d.get(k)
				if !ok || !bytes.Equal(got, want) {
					t.Errorf("get(%q) = %q, %v; want %q, true", k, got, ok, want)
				}
				if cap(got) != len(got) {
					t.Errorf("get(%q) has capacity %d past its length %d: an append would overwrite the next item", k, cap(got), len(got))
				}
			}
			for _, k := range []string{"missing", "appKe", "appKeyX", ""} {
				if _, in := tt.data[k]; in {
					continue
				}
				if got, ok := d.get(k); ok {
					t.Errorf("get(%q) = %q, true; want no value", k, got)
				}
			}
		})
	}
}
