package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to send the server SIGTERM if the harness
// dies first (PR_SET_PDEATHSIG), so that a killed harness leaves no server
// behind holding the database.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
