package compile

// SetBuildWorkers makes full builds use workers goroutines whatever their size, until the
// returned function restores the default (for TestParallelFullBuild).
func SetBuildWorkers(workers int) (restore func()) {
	f := buildWorkers
	buildWorkers = func(int) int { return workers }
	return func() { buildWorkers = f }
}

// IndexLens counts the entries of the appKey and AppCode indexes, whether or not a credential
// may use them (for TestIncrementalMatchesFull: an incremental build must keep no entry that a
// full build would not make, such as one whose last claim is gone).
func (s *Snapshot) IndexLens() (appKeys, appCodes int) {
	return s.appKeys.Len(), s.appCodes.Len()
}
