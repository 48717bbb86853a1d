package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Memory figures of a Linux process from /proc/<pid>/status (proc(5)):
// VmRSS is the resident set now, VmHWM its high-water mark since the process
// started or since the mark was last reset through /proc/<pid>/clear_refs.
type memStatus struct {
	RSS, HWM int64 // bytes
}

// readMem reads VmRSS and VmHWM of pid ("self" for this process).
func readMem(pid string) (memStatus, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return memStatus{}, err
	}
	return parseStatus(b)
}

// parseStatus extracts VmRSS and VmHWM from the text of /proc/<pid>/status,
// whose values are in kB.
func parseStatus(b []byte) (memStatus, error) {
	var m memStatus
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		default:
			continue
		}
		f := bytes.Fields(val)
		if len(f) != 2 || string(f[1]) != "kB" {
			return m, fmt.Errorf("bench: unexpected %s line %q in /proc status", key, sc.Bytes())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return m, fmt.Errorf("bench: %s: %w", key, err)
		}
		*dst = kb << 10
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("bench: VmRSS or VmHWM missing from /proc status (not Linux, or a kernel thread?)")
	}
	return m, nil
}

// resetHWM resets the VmHWM of pid to its current RSS ("5" in clear_refs,
// proc(5), Linux 4.0+), so that the next read gives the peak of what
// happened in between. It fails without permission to write the file.
func resetHWM(pid string) error {
	return os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0)
}

// RSSMonitor watches the memory of one process: the peak over its whole
// life, and the peak over windows (one per scenario). Peaks come from the
// kernel's VmHWM, which misses nothing; when resetting VmHWM is not allowed,
// window peaks fall back to sampling VmRSS every Interval.
type RSSMonitor struct {
	pid      string
	interval time.Duration

	mu       sync.Mutex
	overall  int64 // the largest peak seen in any way
	window   int64 // the sampled peak of the current window
	canReset bool  // false once resetting VmHWM failed
	stop     chan struct{}
	done     chan struct{}
	lastErr  error
}

// NewRSSMonitor starts sampling pid ("self" for this process) every interval.
func NewRSSMonitor(pid string, interval time.Duration) *RSSMonitor {
	m := &RSSMonitor{pid: pid, interval: interval, canReset: true, stop: make(chan struct{}), done: make(chan struct{})}
	m.sample()
	go m.loop()
	return m
}

func (m *RSSMonitor) loop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sample()
		}
	}
}

// sample reads the process's memory once and folds it into the peaks.
func (m *RSSMonitor) sample() memStatus {
	st, err := readMem(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.lastErr = err
		return st
	}
	m.window = max(m.window, st.RSS)
	m.overall = max(m.overall, st.RSS, st.HWM)
	return st
}

// StartWindow begins a new window: VmHWM is reset when allowed.
func (m *RSSMonitor) StartWindow() {
	m.mu.Lock()
	canReset := m.canReset
	m.mu.Unlock()
	// Fold the old high-water mark into the overall peak before it is lost.
	m.sample()
	if canReset && resetHWM(m.pid) != nil {
		canReset = false
	}
	m.mu.Lock()
	m.canReset = canReset
	m.window = 0
	m.mu.Unlock()
	m.sample()
}

// EndWindow returns the peak RSS in bytes since StartWindow: VmHWM when it
// could be reset, else the largest VmRSS sampled.
func (m *RSSMonitor) EndWindow() int64 {
	st := m.sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.canReset && st.HWM > 0 {
		return st.HWM
	}
	return m.window
}

// Current is the resident set now, in bytes (0 when unreadable).
func (m *RSSMonitor) Current() int64 { return m.sample().RSS }

// Peak is the largest resident set seen over the process's life, in bytes.
func (m *RSSMonitor) Peak() int64 {
	m.sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overall
}

// ExactWindows reports whether window peaks come from VmHWM rather than
// sampling.
func (m *RSSMonitor) ExactWindows() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.canReset
}

// Err is the last error reading /proc, if any.
func (m *RSSMonitor) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Stop ends the sampling.
func (m *RSSMonitor) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}
