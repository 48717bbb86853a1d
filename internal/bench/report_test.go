package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	const other = "# fhirgate benchmarks\n\n## Token endpoint\n\n| a | b |\n|---|---|\n"
	cases := []struct {
		name, old, section, body, want string
	}{
		{"empty file", "", "sqlite", "new\n",
			"<!-- bench:begin sqlite -->\nnew\n<!-- bench:end sqlite -->\n"},
		{"appended after a blank line", other, "sqlite", "new",
			other + "\n<!-- bench:begin sqlite -->\nnew\n<!-- bench:end sqlite -->\n"},
		{"file without final newline", "text", "sqlite", "new",
			"text\n\n<!-- bench:begin sqlite -->\nnew\n<!-- bench:end sqlite -->\n"},
		{"replaced in place", "head\n<!-- bench:begin sqlite -->\nold\nolder\n<!-- bench:end sqlite -->\ntail\n", "sqlite", "new\n\n",
			"head\n<!-- bench:begin sqlite -->\nnew\n<!-- bench:end sqlite -->\ntail\n"},
		{"another section left alone",
			"<!-- bench:begin postgres -->\npg\n<!-- bench:end postgres -->\n", "sqlite", "lite",
			"<!-- bench:begin postgres -->\npg\n<!-- bench:end postgres -->\n\n<!-- bench:begin sqlite -->\nlite\n<!-- bench:end sqlite -->\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := replaceSection([]byte(c.old), c.section, c.body)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	for _, bad := range []string{
		"<!-- bench:begin sqlite -->\nno end\n",
		"<!-- bench:end sqlite -->\n<!-- bench:begin sqlite -->\n",
		"no begin\n<!-- bench:end sqlite -->\n",
	} {
		_, err := replaceSection([]byte(bad), "sqlite", "x")
		if err == nil || !strings.Contains(err.Error(), `the markers of section "sqlite" are unbalanced`) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

// TestWriteSection: the file is created, then a second run replaces its
// section and keeps everything around it.
func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# title\n\nkept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"first", "second"} {
		if err := WriteSection(path, "sqlite", body); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	want := "# title\n\nkept\n\n<!-- bench:begin sqlite -->\nsecond\n<!-- bench:end sqlite -->\n"
	if string(b) != want {
		t.Fatalf("got %q", b)
	}
	if err := WriteSection(path, "bad\nname", "x"); err == nil || !strings.Contains(err.Error(), "bad section name") {
		t.Fatalf("bad name: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"100k": 100_000, "1M": 1_000_000, "2.5m": 2_500_000, "3_000_000": 3_000_000, "250000": 250_000, "0": 0, "20K": 20_000} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1G", "two", "2e9"} {
		if _, err := ParseSize(in); err == nil || !strings.Contains(err.Error(), "want a number of resources") {
			t.Errorf("ParseSize(%q): err %v", in, err)
		}
	}
}

func TestExpandScenarios(t *testing.T) {
	got, err := expandScenarios([]string{"export", "search", "token", "search-date"})
	want := []string{ScenarioExport, ScenarioToken, ScenarioSearchToken, ScenarioSearchDate, ScenarioSearchChain}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if got, _ := expandScenarios([]string{"all"}); !reflect.DeepEqual(got, AllScenarios()) {
		t.Fatalf("all: %v", got)
	}
	if _, err := expandScenarios([]string{"read", "writes"}); err == nil || !strings.Contains(err.Error(), `unknown scenario "writes"`) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", 850: "850 ns", 12_340: "12.3 µs", 20 * time.Millisecond: "20 ms",
		1_250_000: "1.25 ms", 2100 * time.Millisecond: "2.1 s", 347 * time.Second: "347 s"} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%d) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 256 << 20: "256 MiB", 1536: "1.5 KiB", 3 << 30: "3 GiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 6000.4: "6,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestJudge: each kind of target, the PostgreSQL allowance, and the
// verdicts of unavailable and failed scenarios.
func TestJudge(t *testing.T) {
	lat := func(p99 time.Duration) *Latency { return &Latency{P50: p99 / 4, P99: p99} }
	cases := []struct {
		name    string
		r       Result
		backend string
		size    int
		verdict string
		misses  []string
	}{
		{"token passes", Result{Scenario: ScenarioToken, Rate: 6500, Latency: lat(15 * time.Millisecond)}, BackendSQLite, 1e5, VerdictPass, nil},
		{"token slow", Result{Scenario: ScenarioToken, Rate: 4798, Latency: lat(25 * time.Millisecond)}, BackendSQLite, 1e5, VerdictMiss,
			[]string{"4,798/s < 6,000/s", "p99 25 ms > 20 ms"}},
		{"token on PostgreSQL gets twice the room", Result{Scenario: ScenarioToken, Rate: 3100, Latency: lat(39 * time.Millisecond)}, BackendPostgres, 1e5, VerdictPass, nil},
		{"read with failures", Result{Scenario: ScenarioRead, Rate: 20000, Latency: lat(time.Millisecond), Failures: map[string]int64{"HTTP 503": 2}}, BackendSQLite, 1e5, VerdictMiss,
			[]string{"failures: HTTP 503 ×2"}},
		{"export scales with size", Result{Scenario: ScenarioExport, Elapsed: 3 * time.Second, PeakRSS: 100 << 20}, BackendSQLite, 100_000, VerdictMiss,
			[]string{"3 s > 2 s"}},
		{"export RSS", Result{Scenario: ScenarioExport, Elapsed: 10 * time.Second, PeakRSS: 300 << 20}, BackendSQLite, 1_000_000, VerdictMiss,
			[]string{"RSS 300 MiB > 256 MiB"}},
		{"load", Result{Scenario: ScenarioLoad, Rate: 12_000}, BackendSQLite, 1e5, VerdictPass, nil},
		{"ingest", Result{Scenario: ScenarioIngest, Rate: 2_000}, BackendSQLite, 1e5, VerdictMiss, []string{"2,000/s < 3,000/s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			r.Available = true
			r.Target = targetFor(r.Scenario, c.backend, c.size)
			r.judge()
			if r.Verdict != c.verdict || !reflect.DeepEqual(r.Misses, c.misses) {
				t.Fatalf("verdict %q misses %q; want %q %q", r.Verdict, r.Misses, c.verdict, c.misses)
			}
		})
	}
	r := Result{Scenario: ScenarioSearchChain, Note: "the server answered 501"}
	r.judge()
	if r.Verdict != VerdictUnavailable {
		t.Fatalf("unavailable: %q", r.Verdict)
	}
	r = Result{Scenario: ScenarioExport, Available: true, Error: "boom"}
	r.judge()
	if r.Verdict != VerdictError {
		t.Fatalf("error: %q", r.Verdict)
	}
	if got := targetFor(ScenarioSearchDate, BackendSQLite, 1e6).String(); got != "≥ 3,000/s, p99 ≤ 50 ms" {
		t.Fatalf("target text %q", got)
	}
}

func TestMarkdownRendersEveryRow(t *testing.T) {
	rep := &Report{Backend: BackendSQLite, Database: "SQLite", CommandLine: "fhirgate bench", Concurrency: 32, Duration: "10s",
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, Memory: 24 << 30, OS: "Debian", Kernel: "6.1", GoVersion: "go1.26", GOARCH: "amd64"}}
	for _, size := range []int{100_000, 1_000_000} {
		run := SizeRun{Resources: size, Patients: size / 83}
		for _, r := range []Result{
			{Scenario: ScenarioToken, Available: true, Count: 30000, Unit: "tokens", Elapsed: 5 * time.Second, Rate: 6000, Latency: &Latency{P50: time.Millisecond, P99: 9 * time.Millisecond}},
			{Scenario: ScenarioSearchChain, Available: true, Count: 9000, Unit: "requests", Elapsed: 3 * time.Second, Rate: 3000, Latency: &Latency{P50: 2 * time.Millisecond, P99: 20 * time.Millisecond}},
			{Scenario: ScenarioExport, Available: true, Count: int64(size), Unit: "resources", Elapsed: time.Duration(size) * 15 * time.Microsecond, Rate: 1 / 15e-6, PeakRSS: 90 << 20},
			{Scenario: ScenarioSearchDate, Note: "the server answered HTTP 501"},
		} {
			r.Target = targetFor(r.Scenario, BackendSQLite, size)
			r.judge()
			run.Results = append(run.Results, r)
		}
		rep.Runs = append(rep.Runs, run)
	}
	md := rep.Markdown()
	for _, want := range []string{
		"### Load harness: SQLite, 100,000 / 1,000,000 resources",
		"- Machine: AMD EPYC, 2 cores, 24 GiB memory, Debian (Linux 6.1), go1.26 amd64",
		"| token | 30,000 | 5 s | 6,000 tokens/s | 1 ms |",
		"| search-date | — | — | — | — | — | — | — | — | — | — | ≥ 3,000/s, p99 ≤ 50 ms | not available |",
		"- search-date not available: the server answered HTTP 501",
		"#### Growth with the data set",
		"| 1,000,000 | 15 s | 66,667 | 90 MiB | — | — | 2 ms / 20 ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
}
