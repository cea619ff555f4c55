package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		env     string
		ratio   float64
		want    int64
		from    string
		wantErr string
	}{
		{name: "cgroup v2", files: map[string]string{"memory.max": "268435456\n"}, ratio: 0.9, want: 241591910, from: "memory.max"},
		{name: "cgroup v2 without a limit", files: map[string]string{"memory.max": "max\n"}, ratio: 0.9},
		{name: "cgroup v1", files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, ratio: 0.5, want: 268435456, from: "memory.limit_in_bytes"},
		{name: "cgroup v1 without a limit", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, ratio: 0.9},
		{name: "v2 wins over v1", files: map[string]string{"memory.max": "1000", "memory/memory.limit_in_bytes": "2000"}, ratio: 1, want: 1000, from: "memory.max"},
		{name: "no cgroup", ratio: 0.9},
		{name: "GOMEMLIMIT set", files: map[string]string{"memory.max": "1000"}, env: "300MiB", ratio: 0.9, from: "GOMEMLIMIT=300MiB"},
		{name: "ratio 0 turns it off", files: map[string]string{"memory.max": "1000"}, ratio: 0},
		{name: "ratio above 1", files: map[string]string{"memory.max": "1000"}, ratio: 1.5, wantErr: "between 0 and 1"},
		{name: "garbage", files: map[string]string{"memory.max": "lots"}, ratio: 0.9, wantErr: `holds "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tt.env
				}
				return ""
			}
			got, from, err := memoryLimit(tt.ratio, root, getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || !strings.Contains(from, tt.from) || (tt.from == "") != (from == "") {
				t.Errorf("memoryLimit = %d from %q, want %d from %q", got, from, tt.want, tt.from)
			}
		})
	}
}
