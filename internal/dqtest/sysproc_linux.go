package dqtest

import "syscall"

// sysProcAttr makes a server die with the test process that started it, so a
// crashed or interrupted test run leaves no servers behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
