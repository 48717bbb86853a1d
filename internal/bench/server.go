package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverOptions say how to start one `fhirgate serve` child.
type serverOptions struct {
	// Argv runs the serve command, e.g. [/usr/local/bin/fhirgate serve].
	Argv []string
	// Env is added to the child's environment.
	Env        []string
	DB         string
	DataDir    string
	RootSecret string
	// Extra are further serve flags from the user.
	Extra []string
	// LogPath receives the child's stdout and stderr.
	LogPath      string
	StartTimeout time.Duration
	StopTimeout  time.Duration
}

// serverProcess is a running `fhirgate serve` child process.
type serverProcess struct {
	cmd     *exec.Cmd
	pid     string
	baseURL string
	mem     *RSSMonitor
	log     *os.File
	exited  chan struct{}
	waitErr error
	tail    *tailBuffer
}

// servingMessage is the log line the server writes once it listens
// (internal/app Run), carrying the base URL it chose.
const servingMessage = "fhirgate is serving"

// serveArgs are the flags the harness always gives serve: a port of the
// kernel's choosing, the run's database and data directory, token rate
// limits out of the way of the token scenario, and JSON logs the harness
// reads the base URL from. The root secret goes through the environment
// so that it never shows in a process list or in the report.
func (o serverOptions) serveArgs() []string {
	args := append([]string{}, o.Argv[1:]...)
	args = append(args,
		"--addr", "127.0.0.1:0",
		"--db", o.DB,
		"--data-dir", o.DataDir,
		"--token-rate-client", "1e9",
		"--token-rate-address", "1e9",
		"--log-format", "json",
		"--log-level", "info",
	)
	return append(args, o.Extra...)
}

// childEnv is this process's environment without FHIRGATE_* variables,
// which would otherwise configure the child behind the harness's back, plus
// the root secret and extra.
func childEnv(rootSecret string, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRGATE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "FHIRGATE_ROOT_SECRET="+rootSecret)
	return append(env, extra...)
}

// startServer runs serve and waits until /health answers 200.
func startServer(ctx context.Context, o serverOptions) (*serverProcess, error) {
	if len(o.Argv) == 0 {
		return nil, errors.New("bench: no server command")
	}
	logf, err := os.Create(o.LogPath)
	if err != nil {
		return nil, fmt.Errorf("bench: server log: %w", err)
	}
	cmd := exec.Command(o.Argv[0], o.serveArgs()...)
	cmd.Env = childEnv(o.RootSecret, o.Env)
	dieWithParent(cmd)
	cmd.Stdout = logf
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", o.Argv[0], err)
	}
	p := &serverProcess{cmd: cmd, pid: strconv.Itoa(cmd.Process.Pid), log: logf, exited: make(chan struct{}), tail: &tailBuffer{max: 4096}}
	base := make(chan string, 1)
	var readDone sync.WaitGroup
	readDone.Add(1)
	go func() {
		defer readDone.Done()
		p.copyLog(stderr, base)
	}()
	go func() {
		readDone.Wait()
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	p.mem = NewRSSMonitor(p.pid, 100*time.Millisecond)
	if err := p.awaitReady(ctx, base, o.StartTimeout); err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// copyLog copies the child's stderr to the log file and hands over the
// base URL of the first serving line.
func (p *serverProcess) copyLog(r io.Reader, base chan<- string) {
	br := bufio.NewReaderSize(r, 64<<10)
	sent := false
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			p.log.Write(line)
			p.tail.Write(line)
			if !sent {
				var rec struct {
					Msg     string `json:"msg"`
					BaseURL string `json:"base_url"`
				}
				if json.Unmarshal(bytes.TrimSpace(line), &rec) == nil && rec.Msg == servingMessage && rec.BaseURL != "" {
					base <- rec.BaseURL
					sent = true
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// awaitReady waits for the serving line and then for GET /health to answer
// 200 (the contract's readiness signal).
func (p *serverProcess) awaitReady(ctx context.Context, base <-chan string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case p.baseURL = <-base:
	case <-p.exited:
		return fmt.Errorf("bench: the server exited before serving (%v): %s", p.waitErr, p.tail.String())
	case <-deadline.C:
		return fmt.Errorf("bench: the server did not start within %s: %s", timeout, p.tail.String())
	case <-ctx.Done():
		return ctx.Err()
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := hc.Get(p.baseURL + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("bench: the server exited before /health answered (%v): %s", p.waitErr, p.tail.String())
		case <-deadline.C:
			return fmt.Errorf("bench: /health did not answer 200 within %s", timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cpuSeconds is the user+system CPU time the child has used, from
// /proc/<pid>/stat (fields 14 and 15, in USER_HZ = 100 ticks per second on
// every Linux architecture Go supports).
func (p *serverProcess) cpuSeconds() float64 {
	return procCPUSeconds(p.pid)
}

// stop sends SIGTERM (the contract's graceful stop) and waits; after
// timeout it kills the process.
func (p *serverProcess) stop(timeout time.Duration) error {
	defer p.mem.Stop()
	select {
	case <-p.exited:
		return p.exitError()
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if timeout <= 0 {
		timeout = time.Minute
	}
	select {
	case <-p.exited:
		return p.exitError()
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("bench: the server did not stop within %s of SIGTERM and was killed", timeout)
	}
}

func (p *serverProcess) exitError() error {
	if p.waitErr != nil {
		return fmt.Errorf("bench: the server exited with %v: %s", p.waitErr, p.tail.String())
	}
	return nil
}

// procCPUSeconds reads utime+stime of pid ("self" included).
func procCPUSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields are counted
	// after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// tailBuffer keeps the last bytes of a log for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String is the kept text on one line.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(string(t.buf)), " ")
}
