package bench

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	const status = "Name:\tfhirgate\nVmPeak:\t 1000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   70000 kB\nThreads:\t9\n"
	m, err := parseStatus([]byte(status))
	if err != nil || m.HWM != 81234<<10 || m.RSS != 70000<<10 {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\nVmHWM:\t1 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestRSSWindowSeesAPeak: memory touched and released inside a window is
// in the window's peak, whether it comes from VmHWM or from sampling.
func TestRSSWindowSeesAPeak(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// Give freed heap back to the OS first, or the allocation below could
	// reuse resident pages and not raise the peak.
	debug.FreeOSMemory()
	m := NewRSSMonitor("self", 5*time.Millisecond)
	defer m.Stop()
	m.StartWindow()
	base := m.Current()
	const size = 64 << 20
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	time.Sleep(30 * time.Millisecond) // lets the sampler see it when VmHWM cannot be reset
	runtime.KeepAlive(buf)
	buf = nil
	peak := m.EndWindow()
	if peak < base+size*9/10 {
		t.Fatalf("window peak %d, want at least %d more than %d (exact windows: %v)", peak, size*9/10, base, m.ExactWindows())
	}
	if m.Peak() < peak {
		t.Fatalf("overall peak %d below the window's %d", m.Peak(), peak)
	}
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestProcCPUSeconds(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// Spin until the counter moves by 50 ms of CPU; on a busy machine
	// that takes longer than 50 ms of wall time, so only a counter that
	// never moves fails.
	before := procCPUSeconds("self")
	deadline := time.Now().Add(10 * time.Second)
	for procCPUSeconds("self")-before < 0.05 {
		if time.Now().After(deadline) {
			t.Fatalf("CPU stayed at %.2f s over 10 s of spinning", procCPUSeconds("self"))
		}
	}
	if procCPUSeconds("no-such-pid") != 0 {
		t.Fatal("a missing process has CPU time")
	}
}

// TestChildEnv: FHIRGATE_* variables of the harness never reach the
// server, the root secret does.
func TestChildEnv(t *testing.T) {
	t.Setenv("FHIRGATE_DB", "postgres://elsewhere")
	t.Setenv("FHIRGATE_ROOT_SECRET", "outer")
	env := childEnv("inner", []string{"X=1"})
	var roots []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "FHIRGATE_DB=") {
			t.Fatalf("leaked %s", kv)
		}
		if strings.HasPrefix(kv, "FHIRGATE_ROOT_SECRET=") {
			roots = append(roots, kv)
		}
	}
	if len(roots) != 1 || roots[0] != "FHIRGATE_ROOT_SECRET=inner" || env[len(env)-1] != "X=1" {
		t.Fatalf("root secret entries %v, env tail %v", roots, env[len(env)-1])
	}
}

// TestStartServerReportsAnEarlyExit: a server that dies before serving is
// an error quoting what it wrote, not a hang.
func TestStartServerReportsAnEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, err := startServer(context.Background(), serverOptions{
		Argv:    []string{"/bin/sh", "-c", "echo 'listen on 127.0.0.1:0: address in use' >&2; exit 3", "serve"},
		LogPath: dir + "/server.log", StartTimeout: 10 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "the server exited before serving (exit status 3)") ||
		!strings.Contains(err.Error(), "address in use") {
		t.Fatalf("err %v", err)
	}
	b, _ := os.ReadFile(dir + "/server.log")
	if !strings.Contains(string(b), "address in use") {
		t.Fatalf("log %q", b)
	}
}

// TestClosedLoop: requests run on every worker, the warm-up is not
// counted, failures are counted by kind, and a worker stops when work runs
// out.
func TestClosedLoop(t *testing.T) {
	var started, ended bool
	res := runClosedLoop(context.Background(), 4, 50*time.Millisecond, 100*time.Millisecond, func(ctx context.Context, i int64) (string, error) {
		time.Sleep(time.Millisecond)
		if i%10 == 0 {
			return "HTTP 503", errors.New("busy")
		}
		return "", nil
	}, phaseHooks{start: func() { started = true }, end: func() { ended = true }})
	if !started || !ended {
		t.Fatal("hooks not run")
	}
	total := res.OK + res.Failures["HTTP 503"]
	if res.OK == 0 || res.Failures["HTTP 503"] == 0 || res.FirstError["HTTP 503"] != "busy" {
		t.Fatalf("%+v", res)
	}
	// 4 workers, 100 ms, ≥1 ms a request: at most about 400 counted; the
	// warm-up's would push it past.
	if total > 440 || res.Elapsed < 100*time.Millisecond {
		t.Fatalf("%d requests in %v", total, res.Elapsed)
	}
	if res.Hist.Count() != uint64(res.OK) {
		t.Fatalf("latencies %d for %d successes", res.Hist.Count(), res.OK)
	}
	res = runClosedLoop(context.Background(), 4, 0, time.Minute, func(ctx context.Context, i int64) (string, error) {
		if i >= 100 {
			return "", errNoMoreWork
		}
		return "", nil
	}, phaseHooks{})
	if res.OK != 100 || res.Elapsed > 10*time.Second {
		t.Fatalf("ran %d in %v, want 100 and an early end", res.OK, res.Elapsed)
	}
}

// TestPatientsFor: the patient count lands the data set within 2% of the
// size asked for.
func TestPatientsFor(t *testing.T) {
	for _, size := range []int{2_000, 100_000} {
		p, err := patientsFor(size, 1)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := prepareData(context.Background(), t.TempDir(), p, 1, 10, 5)
		if err != nil {
			t.Fatal(err)
		}
		if d := float64(ds.Total-size) / float64(size); d > 0.02 || d < -0.02 {
			t.Errorf("size %d: %d patients make %d resources", size, p, ds.Total)
		}
	}
	if p, _ := patientsFor(0, 1); p != 0 {
		t.Fatalf("0 resources: %d patients", p)
	}
}

// TestPrepareDataSamplesAndReuse: the samples are deterministic, name
// resources of the data set (never a Group), and a second call reuses the
// files.
func TestPrepareDataSamplesAndReuse(t *testing.T) {
	dir := t.TempDir()
	a, err := prepareData(context.Background(), dir, 20, 7, 50, 5)
	if err != nil {
		t.Fatal(err)
	}
	if a.Reused || len(a.Reads) != 50 || len(a.MRNs) != 5 || a.Counts["Patient"] != 20 {
		t.Fatalf("%+v", a)
	}
	b, err := prepareData(context.Background(), t.TempDir(), 20, 7, 50, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Reads {
		if a.Reads[i] != b.Reads[i] {
			t.Fatalf("read sample %d differs: %v vs %v", i, a.Reads[i], b.Reads[i])
		}
		if a.Reads[i].Type == "Group" {
			t.Fatal("a Group in the read sample")
		}
	}
	body, err := os.ReadFile(dir + "/" + a.Reads[0].Type + ".ndjson")
	if err != nil || !strings.Contains(string(body), `"id":"`+a.Reads[0].ID+`"`) {
		t.Fatalf("sampled %v not in its file: %v", a.Reads[0], err)
	}
	pats, _ := os.ReadFile(dir + "/Patient.ndjson")
	if !strings.Contains(string(pats), `"value":"`+a.MRNs[0]+`"`) {
		t.Fatalf("MRN %s not in Patient.ndjson", a.MRNs[0])
	}
	c, err := prepareData(context.Background(), dir, 20, 7, 50, 5)
	if err != nil || !c.Reused || c.Total != a.Total || c.Reads[3] != a.Reads[3] {
		t.Fatalf("reuse: %+v %v", c, err)
	}
}
