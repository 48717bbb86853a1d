package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/bench"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// runBenchBinary runs the real binary's bench command, which starts the
// same binary's serve command as its child, without FHIRGATE_* variables.
func runBenchBinary(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), append([]string{"bench"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("fhirgate bench: %v\nstderr:\n%s", err, errb.String())
	}
	return out.String(), errb.String()
}

// tinyBench are the flags of a run small enough for a test: about 1,500
// resources, a second per scenario, 4 connections.
var tinyBench = []string{"--resources", "1500", "--duration", "1s", "--warmup", "200ms", "--concurrency", "4",
	"--token-assertions", "200", "--ingest-resources", "800"}

// TestBenchEndToEnd runs every scenario at a tiny size on SQLite: the
// report reaches stdout, the JSON file and its section of the Markdown
// file (the rest of which stays as it was); the server was stopped with
// SIGTERM; both CPU profiles were written.
func TestBenchEndToEnd(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "BENCHMARKS.md")
	const before = "# fhirgate benchmarks\n\nSections written by hand stay as they are.\n"
	if err := os.WriteFile(doc, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	work, jsonPath, cpu, profiles := filepath.Join(dir, "work"), filepath.Join(dir, "bench.json"), filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "profiles")
	start := time.Now()
	stdout, _ := runBenchBinary(t, append(tinyBench, "--work-dir", work, "--keep", "--doc", doc, "--section", "e2e",
		"--json", jsonPath, "--cpuprofile", cpu, "--server-profile", profiles)...)
	t.Logf("bench took %s", time.Since(start).Round(time.Millisecond))

	var rep bench.Report
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Backend != bench.BackendSQLite || len(rep.Runs) != 1 || rep.Machine.Cores < 1 || rep.Machine.GoVersion == "" {
		t.Fatalf("report header: %+v", rep)
	}
	run := rep.Runs[0]
	if run.Resources < 1400 || run.Resources > 1600 || run.ServerPeakRSS <= 0 {
		t.Fatalf("run: %d resources, peak RSS %d", run.Resources, run.ServerPeakRSS)
	}
	var names []string
	for _, r := range run.Results {
		names = append(names, r.Scenario)
		if r.Error != "" || len(r.Failures) > 0 {
			t.Errorf("%s: error %q, failures %v (%s)", r.Scenario, r.Error, r.Failures, r.FailureExample)
		}
		if !r.Available {
			// Another engineer's feature may not be there yet; say so.
			t.Logf("%s not available: %s", r.Scenario, r.Note)
			continue
		}
		if r.Count <= 0 || r.Rate <= 0 || r.Elapsed <= 0 || r.PeakRSS <= 0 || r.Verdict == "" || r.Target == (bench.Target{}) {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
		if r.Scenario != bench.ScenarioExport && (r.Latency == nil || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.Latency.Max < r.Latency.P99) {
			t.Errorf("%s latency: %+v", r.Scenario, r.Latency)
		}
	}
	if strings.Join(names, ",") != strings.Join(bench.AllScenarios(), ",") {
		t.Fatalf("scenarios %v", names)
	}
	for _, name := range []string{bench.ScenarioLoad, bench.ScenarioToken, bench.ScenarioRead} {
		if r := find(run.Results, name); !r.Available {
			t.Errorf("%s must always be available: %s", name, r.Note)
		}
	}
	if tok := find(run.Results, bench.ScenarioToken); tok.Count > 200 {
		t.Errorf("token: %d tokens from 200 measured assertions", tok.Count)
	}
	if exp := find(run.Results, bench.ScenarioExport); exp.Available && exp.Count != int64(run.Resources) {
		t.Errorf("export: %d resources of %d", exp.Count, run.Resources)
	}

	md, _ := os.ReadFile(doc)
	if !strings.HasPrefix(string(md), before+"\n<!-- bench:begin e2e -->\n### Load harness: SQLite") ||
		!strings.HasSuffix(string(md), "<!-- bench:end e2e -->\n") {
		t.Fatalf("BENCHMARKS.md:\n%s", md)
	}
	if !strings.Contains(stdout, "| read | ") || !strings.Contains(string(md), "| read | ") {
		t.Fatalf("no read row in stdout:\n%s", stdout)
	}
	if !strings.Contains(string(md), "- Command: `fhirgate bench --resources 1500 ") {
		t.Errorf("command line missing from the section")
	}

	// SIGTERM drained the server: its log ends with the shutdown.
	logs, err := filepath.Glob(filepath.Join(work, "run-*", "server.log"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("server logs %v %v", logs, err)
	}
	log, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(log), "shutting down: draining in-flight requests") {
		t.Errorf("the server log shows no graceful stop:\n%s", log)
	}
	for _, p := range []string{cpu, filepath.Join(profiles, "sqlite-token-"+strconv.Itoa(run.Resources)+".pprof")} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", p, err)
		}
	}
}

// TestBenchInterrupted: SIGTERM in the middle of a scenario stops the run
// at once, stops the server gracefully, exits non-zero and leaves the
// Markdown file as it was.
func TestBenchInterrupted(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(doc, []byte("# untouched\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	cmd := exec.Command(buildBinary(t), "bench", "--resources", "1500", "--scenarios", "read", "--duration", "5m",
		"--concurrency", "2", "--work-dir", work, "--keep", "--doc", doc)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), `msg="starting the server"`) {
	}
	time.Sleep(3 * time.Second) // the server starts, the reads run
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	if err == nil {
		t.Fatal("an interrupted run exited 0")
	}
	if took := time.Since(t0); took > 30*time.Second {
		t.Fatalf("the run took %s to stop", took)
	}
	if b, _ := os.ReadFile(doc); string(b) != "# untouched\n" {
		t.Fatalf("the Markdown file changed:\n%s", b)
	}
	logs, _ := filepath.Glob(filepath.Join(work, "run-*", "server.log"))
	if len(logs) != 1 {
		t.Fatalf("server logs %v", logs)
	}
	log, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(log), "shutting down: draining in-flight requests") {
		t.Fatalf("the server was not stopped gracefully:\n%s", log)
	}
}

// TestBenchPostgres runs a few scenarios on PostgreSQL and checks that the
// run's schema is gone afterwards.
func TestBenchPostgres(t *testing.T) {
	dsn := os.Getenv(testdb.EnvPostgres)
	if dsn == "" {
		t.Skip(testdb.EnvPostgres + " is not set")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schemas := func() int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'bench\_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n0 := schemas()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	runBenchBinary(t, append(tinyBench, "--db", dsn, "--scenarios", "load,read,export", "--json", jsonPath)...)
	var rep bench.Report
	b, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Backend != bench.BackendPostgres || !strings.HasPrefix(rep.Database, "PostgreSQL ") || len(rep.Runs) != 1 || len(rep.Runs[0].Results) != 3 {
		t.Fatalf("%+v", rep)
	}
	for _, r := range rep.Runs[0].Results {
		if r.Error != "" || len(r.Failures) > 0 || r.Available && r.Count == 0 {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
	}
	if read := find(rep.Runs[0].Results, bench.ScenarioRead); read.Target.MinRate != 7500 {
		t.Errorf("PostgreSQL read target %v, want half of 15,000/s", read.Target.MinRate)
	}
	if n := schemas(); n != n0 {
		t.Fatalf("%d bench schemas before, %d after: the run's schema was not dropped", n0, n)
	}
}

// TestBenchFlagErrors: bad flags fail before anything starts, with exit
// status 2 and a message naming the flag.
func TestBenchFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--resources", "1G"}, `bench: --resources: bench: size "1G": want a number of resources such as 100k, 1M or 250000`},
		{[]string{"--concurrency", "0"}, "bench: --concurrency must be at least 1, got 0"},
	} {
		_, _, err := runCLI(t, context.Background(), append([]string{"bench"}, c.args...)...)
		if err == nil || err.Error() != c.want || exitCode(err) != 2 {
			t.Errorf("%v: err %v (exit %d), want %q", c.args, err, exitCode(err), c.want)
		}
	}
	_, _, err := runCLI(t, context.Background(), "bench", "--scenarios", "read,writes", "--work-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `unknown scenario "writes"`) {
		t.Errorf("unknown scenario: %v", err)
	}
	_, _, err = runCLI(t, context.Background(), "bench", "--db", "mysql://x", "--work-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `--db "mysql://x": want sqlite, sqlite?PARAMS or a postgres:// DSN`) {
		t.Errorf("bad db: %v", err)
	}
}

func TestBenchCommandLine(t *testing.T) {
	got := benchCommandLine([]string{"/tmp/x/fhirgate", "bench", "--db", "postgres://bench:s3cret@db:5432/fhir?sslmode=disable", "--resources", "100k,1M"})
	want := "fhirgate bench --db 'postgres://bench:xxxxx@db:5432/fhir?sslmode=disable' --resources 100k,1M"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := maskDSN("postgres://postgres@127.0.0.1:55432/postgres"); got != "postgres://postgres@127.0.0.1:55432/postgres" {
		t.Fatalf("no password: %s", got)
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Fatalf("quote: %s", got)
	}
}

func find(rs []bench.Result, name string) bench.Result {
	for _, r := range rs {
		if r.Scenario == name {
			return r
		}
	}
	return bench.Result{}
}
