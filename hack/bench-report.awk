# Reads `go test -bench` output and prints each compile benchmark against its target
# (issue "Foundation": full compile <= 1 s and <= 150 MB live heap at 10k bindings / 100k
# credentials; the update after one object changes <= 2 ms).
/^BenchmarkBuildFull/ {
  for (i = 1; i <= NF; i++) { if ($i == "ns/op") ns = $(i-1); if ($i == "live-MB") mb = $(i-1) }
  printf "%-38s %10.3f s    target 1 s      ratio %.2f\n", "full compile", ns/1e9, ns/1e9
  printf "%-38s %10.1f MB   target 150 MB   ratio %.2f\n", "full compile live heap", mb, mb/150
}
/^BenchmarkBuildOneChange\// {
  split($1, p, "/"); sub(/-[0-9]+$/, "", p[2])
  for (i = 1; i <= NF; i++) if ($i == "ns/op") ns = $(i-1)
  printf "%-38s %10.3f ms   target 2 ms     ratio %.3f\n", "one " p[2] " changed", ns/1e6, ns/2e6
}
# BenchmarkPropagation (issue 5, make bench-propagation): API write -> first changed decision
# against the real kube-apiserver, p99 <= 10 ms idle and <= 20 ms under gRPC load; the world's
# full compile (target 1 s, as BenchmarkBuildFull) and the process memory once loaded.
/^BenchmarkPropagation\/world/ {
  for (i = 2; i <= NF; i++) m[$i] = $(i-1)
  printf "%-38s %10.3f s    target 1 s      ratio %.2f   (%d bindings / %d creds; start to ready %.1f s)\n", "world full compile (replica start)", m["compile-s"], m["compile-s"], m["bindings"], m["credentials"], m["startup-s"]
  printf "%-38s %10.0f MB   VmHWM %.0f MB; the measured replica added %.0f MB\n", "process VmRSS, world loaded", m["rss-MB"], m["hwm-MB"], m["replica-MB"]
  delete m
}
/^BenchmarkPropagation\/(idle|load)\// {
  split($1, p, "/"); sub(/-[0-9]+$/, "", p[3])
  for (i = 2; i <= NF; i++) m[$i] = $(i-1)
  target = (p[2] == "idle") ? 10 : 20
  printf "%-38s %10.3f ms   target %d ms p99 ratio %.2f   (p50 %.3f; API %.3f, watch %.3f, event->decision %.3f/%.3f p50/p99, build %.3f%s)\n", \
    "propagation " p[2] " " p[3], m["p99-ms"], target, m["p99-ms"]/target, m["p50-ms"], m["api-ms"], m["watch-ms"], m["publish-ms"], m["publish-p99-ms"], m["build-ms"], \
    ("loadavg" in m) ? sprintf("; machine load avg %.1f", m["loadavg"]) : ""
  if (p[2] == "load") printf "%-38s %10.0f /s   check round trip p99 %.3f ms\n", "  checks served meanwhile", m["checks/s"], m["check-p99-ms"]
  delete m
}
/^BenchmarkDecideTwoFactorCached|^BenchmarkDecideAppCode/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  for (i = 1; i <= NF; i++) { if ($i == "allocs/op") a = $(i-1); if ($i == "ns/op") ns = $(i-1) }
  target = (name ~ /AppCode/) ? 5 : 20
  printf "%-38s %10d allocs target %d      ratio %.2f   (%.0f ns/op)\n", name, a, target, a/target, ns
}
/^BenchmarkCheck\/TwoFactorCached|^BenchmarkCheck\/AppCode/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  for (i = 1; i <= NF; i++) { if ($i == "allocs/op") a = $(i-1); if ($i == "ns/op") ns = $(i-1) }
  printf "%-38s %10d allocs (with CheckRequest conversion and CheckResponse; %.0f ns/op)\n", name, a, ns
}
/^BenchmarkLookup\// {
  split($1, p, "/"); sub(/-[0-9]+$/, "", p[3])
  for (i = 1; i <= NF; i++) if ($i == "ns/op") lk[p[2] "/" p[3]] = $(i-1)
}
END {
  for (k in lk) {
    split(k, q, "/")
    if (q[2] == "small" && ((q[1] "/large") in lk))
      printf "%-38s %10.0f ns small, %.0f ns large (10/100 vs 10,000/100,000 bindings/creds)\n", q[1] " lookup", lk[k], lk[q[1] "/large"]
  }
}
