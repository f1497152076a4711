/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memoryGiB"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	OS        string  `json:"os"`
	// LoadAverage is /proc/loadavg when the bench started: the machine may be shared.
	LoadAverage string `json:"loadAverage"`
}

func machineInfo() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if kib, ok := procField("/proc/meminfo", "MemTotal:"); ok {
		m.MemoryGiB = float64(int(kib/1024/1024*10)) / 10
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		fields := strings.Fields(string(raw))
		if len(fields) >= 3 {
			m.LoadAverage = strings.Join(fields[:3], " ")
		}
	}
	return m
}

// procField reads a "Name:   123 kB" line of a /proc file, in the file's unit.
func procField(path, name string) (float64, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	lines := bufio.NewScanner(bytes.NewReader(raw))
	for lines.Scan() {
		if fields := strings.Fields(lines.Text()); len(fields) >= 2 && fields[0] == name {
			v, err := strconv.ParseFloat(fields[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// rssMiB returns a process's peak (VmHWM) and current (VmRSS) resident set, in MiB.
func rssMiB(pid int) (peak, current float64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	hwm, ok1 := procField(path, "VmHWM:")
	rss, ok2 := procField(path, "VmRSS:")
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("no VmHWM/VmRSS in %s", path)
	}
	return hwm / 1024, rss / 1024, nil
}

// memSampler follows a process's resident memory while load runs: the peak of VmRSS and of its
// anonymous part (RssAnon: heap, stacks; the rest is mostly the executable's file pages).
type memSampler struct {
	pid                int
	done               chan struct{}
	stopped            chan struct{}
	peakAnon, peakFile float64
}

func startMemSampler(pid int) *memSampler {
	m := &memSampler{pid: pid, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(m.stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			path := fmt.Sprintf("/proc/%d/status", pid)
			if anon, ok := procField(path, "RssAnon:"); ok {
				m.peakAnon = max(m.peakAnon, anon/1024)
			}
			if file, ok := procField(path, "RssFile:"); ok {
				m.peakFile = max(m.peakFile, file/1024)
			}
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// stop returns the peaks of RssAnon and RssFile, in MiB.
func (m *memSampler) stop() (anon, file float64) {
	close(m.done)
	<-m.stopped
	return m.peakAnon, m.peakFile
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; 100 on every Linux this runs on.
const clockTick = 100

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; the fields after its ')' are fixed.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(raw[i+1:]))
	// fields[0] is field 3 (state); utime is field 14 and stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// machineCPU is the busy and total CPU time of the whole machine so far (/proc/stat).
func machineCPU() (busy, total time.Duration, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("malformed /proc/stat")
	}
	var sum, idle int64
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("malformed /proc/stat")
		}
		if i >= 8 { // guest times are already counted in user and nice
			break
		}
		sum += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	tick := time.Second / clockTick
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, nil
}

// cpuWindow measures CPU use over a stretch of wall time: of some processes and of the machine.
type cpuWindow struct {
	pids      []int
	start     []time.Duration
	busy0     time.Duration
	total0    time.Duration
	wallStart time.Time
}

func startCPUWindow(pids ...int) *cpuWindow {
	w := &cpuWindow{pids: pids, wallStart: time.Now()}
	for _, pid := range pids {
		t, _ := cpuTime(pid)
		w.start = append(w.start, t)
	}
	w.busy0, w.total0, _ = machineCPU()
	return w
}

// cpuUse is what a window measured. Cores are CPU seconds per wall second.
type cpuUse struct {
	wall time.Duration
	// procs are the CPU times of the window's processes, in order.
	procs []time.Duration
	// machineCores is the whole machine's busy time per wall second; capacity its cores.
	machineCores float64
}

func (w *cpuWindow) stop() cpuUse {
	u := cpuUse{wall: time.Since(w.wallStart)}
	for i, pid := range w.pids {
		t, _ := cpuTime(pid)
		u.procs = append(u.procs, t-w.start[i])
	}
	busy, total, err := machineCPU()
	if err == nil && total > w.total0 {
		u.machineCores = float64(busy-w.busy0) / float64(total-w.total0) * float64(runtime.NumCPU())
	}
	return u
}

func (u cpuUse) cores(i int) float64 { return u.procs[i].Seconds() / u.wall.Seconds() }
