//go:build e2e && linux

package e2e

import (
	"os"
	"syscall"
)

// sysProcAttr kills a child when the test process dies, however it dies, so no nginx or
// portcullis outlives a killed test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
