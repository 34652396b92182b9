package main

import "syscall"

// childAttr puts PROST in its own process group, so a Ctrl-C at the terminal
// reaches only the benchmark, which then stops PROST with SIGTERM and waits;
// and asks the kernel to send PROST SIGTERM should the benchmark die first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
