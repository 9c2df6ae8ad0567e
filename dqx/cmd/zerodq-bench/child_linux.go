package main

import "syscall"

// childProcAttr makes a subprocess die with this program, so an interrupted
// run leaves no consumers behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
