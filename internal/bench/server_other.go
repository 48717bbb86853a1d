//go:build !linux

package bench

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; the harness
// stops its server itself on every path it controls.
func dieWithParent(*exec.Cmd) {}
