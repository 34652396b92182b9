package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// procStatusKB reads a "Key:   N kB" line (VmRSS, VmHWM) of /proc/<pid>/status.
func procStatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, key)
}

func parseStatusKB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key+":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("%s not found in /proc status", key)
}

// clockTicks is the kernel's USER_HZ, which /proc/<pid>/stat counts CPU time
// in; 100 on every Linux architecture Go supports.
const clockTicks = 100

// procCPUSeconds is the user plus system CPU time of pid so far.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(stat []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// memTotalMiB is the machine's memory from /proc/meminfo; 0 when unknown.
func memTotalMiB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	kb, err := parseStatusKB(b, "MemTotal")
	if err != nil {
		return 0
	}
	return kb / 1024
}

// cpuSnapshot is the CPU time used so far by each party on the machine.
type cpuSnapshot struct {
	at                       float64 // machine busy seconds (all processes)
	prost, postgres, harness float64
	ok                       bool
}

// CPUShare is how many cores each party kept busy on average during a step.
// Other is everything else on the machine (other users' builds and tests),
// which competes for the same cores.
type CPUShare struct {
	Prost    float64 `json:"prost_cores"`
	Postgres float64 `json:"postgres_cores"`
	Harness  float64 `json:"harness_cores"`
	Other    float64 `json:"other_cores"`
}

// takeCPU reads the CPU counters; prostPID 0 leaves PROST out.
func takeCPU(prostPID int) cpuSnapshot {
	var s cpuSnapshot
	busy, err := machineBusySeconds()
	if err != nil {
		return s
	}
	s.at, s.ok = busy, true
	if prostPID > 0 {
		s.prost, _ = procCPUSeconds(prostPID)
	}
	s.harness, _ = procCPUSeconds(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if c, err := procCPUSeconds(pid); err == nil {
			s.postgres += c
		}
	}
	return s
}

// share is the cores each party used between a and b, over window seconds.
// Postgres backends that ended in between are not counted.
func share(a, b cpuSnapshot, window float64) *CPUShare {
	if !a.ok || !b.ok || window <= 0 {
		return nil
	}
	c := &CPUShare{
		Prost:    (b.prost - a.prost) / window,
		Postgres: max(0, b.postgres-a.postgres) / window,
		Harness:  (b.harness - a.harness) / window,
	}
	c.Other = max(0, (b.at-a.at)/window-c.Prost-c.Postgres-c.Harness)
	for _, v := range []*float64{&c.Prost, &c.Postgres, &c.Harness, &c.Other} {
		*v = math.Round(*v*100) / 100
	}
	return c
}

// machineBusySeconds is the non-idle CPU time of the whole machine from
// the first line of /proc/stat.
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += n
	}
	return float64(busy) / clockTicks, nil
}

// loadAverage is the 1-minute load average; 0 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
