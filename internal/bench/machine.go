package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Memory    int64  `json:"memory_bytes"`
	OS        string `json:"os"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	GOARCH    string `json:"goarch"`
}

// DescribeMachine reads the machine's CPU model and memory from /proc, the
// OS from /etc/os-release, and the Go version this binary was built with
// (the server runs the same binary).
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), GOARCH: runtime.GOARCH, OS: runtime.GOOS}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = firstField(b, "model name", ':')
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(firstField(b, "MemTotal", ':'))
		if len(f) == 2 && f[1] == "kB" {
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			m.Memory = kb << 10
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if v := strings.Trim(firstField(b, "PRETTY_NAME", '='), `"`); v != "" {
			m.OS = v
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if m.CPU == "" {
		m.CPU = runtime.GOARCH
	}
	return m
}

// firstField returns the value of the first "key<sep>value" line.
func firstField(b []byte, key string, sep byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte{sep})
		if ok && strings.TrimSpace(string(k)) == key {
			return strings.TrimSpace(string(v))
		}
	}
	return ""
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
