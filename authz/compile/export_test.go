package compile

// SetBuildWorkers makes full builds use workers goroutines whatever their size, until the
// returned function restores the default (for TestParallelFullBuild).
func SetBuildWorkers(workers int) (restore func()) {
	f := buildWorkers
	buildWorkers = func(int) int { return workers }
	return func() { buildWorkers = f }
}
