package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupLimitFiles are where a container's memory limit is read, relative to the cgroup
// file system: cgroup v2 first, then v1. Both hold a number of bytes; v2 says "max" and v1 a
// huge number when there is no limit.
var cgroupLimitFiles = []string{"memory.max", "memory/memory.limit_in_bytes"}

// noCgroupLimit is the smallest value cgroup v1 uses for "no limit" (the page-rounded
// maximum); anything from it on is read as unlimited.
const noCgroupLimit = 1 << 62

// memoryLimit decides the Go heap limit: nothing when the GOMEMLIMIT environment variable
// is set (the runtime has applied it) or ratio is 0; else ratio times the memory limit of
// the container (the cgroup under root), when it has one. It returns the limit (0: none) and
// where it came from.
func memoryLimit(ratio float64, root string, getenv func(string) string) (int64, string, error) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v, nil
	}
	if ratio == 0 {
		return 0, "", nil
	}
	if ratio < 0 || ratio > 1 || math.IsNaN(ratio) {
		return 0, "", fmt.Errorf("--memory-limit-ratio must be between 0 and 1, got %g", ratio)
	}
	for _, name := range cgroupLimitFiles {
		path := filepath.Join(root, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read the container memory limit: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, "", nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, "", fmt.Errorf("read the container memory limit: %s holds %q, not a number of bytes", path, s)
		}
		if n >= noCgroupLimit {
			return 0, "", nil
		}
		return int64(float64(n) * ratio), fmt.Sprintf("%g of %s (%d bytes)", ratio, path, n), nil
	}
	return 0, "", nil
}

// applyMemoryLimit sets the Go heap limit as memoryLimit decides.
func applyMemoryLimit(ratio float64) (int64, string, error) {
	limit, from, err := memoryLimit(ratio, "/sys/fs/cgroup", os.Getenv)
	if err != nil || limit == 0 {
		return 0, from, err
	}
	debug.SetMemoryLimit(limit)
	return limit, from, nil
}
