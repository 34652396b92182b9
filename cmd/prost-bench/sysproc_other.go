//go:build !linux

package main

import "syscall"

// childAttr puts PROST in its own process group (see sysproc_linux.go).
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
