package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds the fhirgate binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fhirgate-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fhirgate")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not become healthy")
}

// TestServeSIGTERM: the real binary, configured through FHIRGATE_*
// variables, serves; SIGTERM lets an in-flight request finish and exits 0.
func TestServeSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FHIRGATE_ADDR="+addr, "FHIRGATE_ROOT_SECRET=s", "FHIRGATE_DATA_DIR="+filepath.Join(dir, "data"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	logDone := make(chan struct{})
	go func() { io.Copy(&logs, stderr); close(logDone) }()
	base := "http://" + addr
	waitHealthy(t, base)
	if _, err := os.Stat(filepath.Join(dir, "data", "fhirgate.db")); err != nil {
		t.Fatalf("the SQLite file is not under FHIRGATE_DATA_DIR: %v", err)
	}

	// Start a request whose body arrives slowly, then SIGTERM mid-request.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"resourceType":"Patient","name":[{"family":"Draining"}]}`
	io.WriteString(conn, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nAuthorization: Basic cm9vdDpz\r\n"+
		"Content-Type: application/fhir+json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body[:10])
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	io.WriteString(conn, body[10:])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request was cut off: %v", err)
	}
	if resp.StatusCode != 201 {
		t.Fatalf("in-flight request: %d", resp.StatusCode)
	}
	conn.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		<-logDone
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"shutting down`) {
		t.Fatalf("logs: %s", logs.String())
	}
}

// TestServeBadConfig: a bad flag exits non-zero with one line on stderr.
func TestServeBadConfig(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{
		{"serve", "--addr", "nonsense"},
		{"serve", "--db", "mysql://x"},
		{"serve", "--log-level", "loud"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil {
			t.Fatalf("%v succeeded", args)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "fhirgate: ") {
			t.Fatalf("%v: want one line on stderr, got %q", args, out)
		}
	}
}
