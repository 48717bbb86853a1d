// Package bench is fhirgate's load harness (issue 7): it starts the real
// server as a child process (`fhirgate serve` from the same binary) on a
// fresh database, prepares a deterministic seed data set, drives the
// server over loopback HTTP with a closed-loop load generator, and reports
// throughput, latency percentiles, errors and the server's peak RSS per
// scenario against the targets, as Markdown and JSON.
//
// The scenarios, in the order they run for each data set size:
//
//   - load: the data set loaded straight into the database with the loader
//     (`fhirgate load --db`), before the server starts.
//   - export: a system-level Bulk Data export with the SDK (client/bulk),
//     timed from kick-off until every file is downloaded; it runs first on
//     the fresh server so that its peak RSS is its own.
//   - token: POST /auth/token with distinct RS384 client assertions, signed
//     before the clock starts (signing is the client's cost).
//   - read: GET /fhir/{type}/{id} with a bearer token, ids sampled uniformly
//     from the data set.
//   - search-token, search-date, search-chain: _count=20 searches by code,
//     by a month's date range, and chained through Patient.identifier.
//   - ingest: another seed data set posted as transaction Bundles of PUT
//     entries (loader.ToServer), a few Bundles at a time.
//
// A scenario the server answers with 400, 404, 405 or 501 (a search shape or
// export not there yet) is reported as not available; the run goes on.
//
// The load generator shares the machine's cores with the server, so its CPU
// is counted too: each row says how many cores the server and the harness
// used on average.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/internal/seed"
)

// Scenario names.
const (
	ScenarioLoad        = "load"
	ScenarioToken       = "token"
	ScenarioRead        = "read"
	ScenarioSearch      = "search" // all three searches
	ScenarioSearchToken = "search-token"
	ScenarioSearchDate  = "search-date"
	ScenarioSearchChain = "search-chain"
	ScenarioExport      = "export"
	ScenarioIngest      = "ingest"
)

// AllScenarios lists every scenario in the order they run. Export comes
// right after the server starts, so that its peak RSS is the export's and
// not what earlier scenarios left in the heap and the database page caches.
func AllScenarios() []string {
	return []string{ScenarioLoad, ScenarioExport, ScenarioToken, ScenarioRead, ScenarioSearchToken, ScenarioSearchDate,
		ScenarioSearchChain, ScenarioIngest}
}

// Config configures a run. Zero values take the defaults documented on each
// field.
type Config struct {
	// ServerArgv is the command that runs `fhirgate serve`, e.g.
	// [os.Executable(), "serve"]; the harness appends its flags.
	ServerArgv []string
	// ServerEnv is added to the server's environment.
	ServerEnv []string
	// ServeArgs are further flags for serve.
	ServeArgs []string
	// DB is "sqlite" (default; "sqlite?PARAMS" adds URL parameters) or a
	// postgres:// DSN on which a fresh schema is created and dropped.
	DB string
	// Sizes are the data set sizes in resources, one fresh database and
	// server each [100,000].
	Sizes []int
	// Scenarios to run [all]; "search" stands for the three searches.
	Scenarios []string
	// Duration and Warmup of each closed-loop scenario [10s, 2s].
	Duration, Warmup time.Duration
	// Concurrency is the number of load workers (connections) [32].
	Concurrency int
	// TokenAssertions is how many assertions the token scenario signs
	// beforehand; it ends early when they run out [30,000].
	TokenAssertions int
	// IngestResources is the size of the data set posted over HTTP
	// [50,000].
	IngestResources int
	// IngestParallel is the number of Bundles in flight [4];
	// IngestBatch the entries per Bundle [500].
	IngestParallel, IngestBatch int
	// LoadBatch is the number of resources per database transaction of
	// the load scenario [1000].
	LoadBatch int
	// ExportRuns is how many exports the export scenario runs [1].
	ExportRuns int
	// Seed is the seed of the data set [seed.DefaultSeed].
	Seed uint64
	// WorkDir holds data, databases, server logs and export downloads
	// [a new temporary directory].
	WorkDir string
	// Keep keeps WorkDir (and its generated data, which the next run
	// reuses) and the PostgreSQL schema.
	Keep bool
	// ServerProfileDir, when set, receives a server CPU profile
	// (/debug/pprof/profile) of each closed-loop scenario's measurement.
	ServerProfileDir string
	// ReadSample is the number of resource ids sampled for reads
	// [100,000].
	ReadSample int
	// CommandLine is the command as typed, for the report.
	CommandLine string
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.DB == "" {
		c.DB = BackendSQLite
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{100_000}
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = AllScenarios()
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.TokenAssertions <= 0 {
		c.TokenAssertions = 30_000
	}
	if c.IngestResources <= 0 {
		c.IngestResources = 50_000
	}
	if c.IngestParallel <= 0 {
		c.IngestParallel = 4
	}
	if c.IngestBatch <= 0 {
		c.IngestBatch = 500
	}
	if c.LoadBatch <= 0 {
		c.LoadBatch = 1000
	}
	if c.ExportRuns <= 0 {
		c.ExportRuns = 1
	}
	if c.Seed == 0 {
		c.Seed = seed.DefaultSeed
	}
	if c.ReadSample <= 0 {
		c.ReadSample = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// expandScenarios resolves "search" and checks the names, keeping run order.
func expandScenarios(names []string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(strings.ToLower(n))
		switch {
		case n == ScenarioSearch:
			want[ScenarioSearchToken], want[ScenarioSearchDate], want[ScenarioSearchChain] = true, true, true
		case n == "all":
			for _, s := range AllScenarios() {
				want[s] = true
			}
		case slices.Contains(AllScenarios(), n):
			want[n] = true
		default:
			return nil, fmt.Errorf("bench: unknown scenario %q; choose from %s, search", n, strings.Join(AllScenarios(), ", "))
		}
	}
	var out []string
	for _, s := range AllScenarios() {
		if want[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Result is the measurement of one scenario.
type Result struct {
	Scenario string `json:"scenario"`
	// What says in a few words what was measured.
	What string `json:"what"`
	// Available is false when the server does not offer the feature yet;
	// Note then says what it answered.
	Available bool   `json:"available"`
	Note      string `json:"note,omitempty"`
	// Error is set when the scenario failed for another reason.
	Error       string `json:"error,omitempty"`
	Concurrency int    `json:"concurrency"`
	// Count is the number of successful operations, in Unit.
	Count int64  `json:"count"`
	Unit  string `json:"unit"`
	// Elapsed is the measured time; Rate is Count per second of it.
	Elapsed time.Duration `json:"elapsed_ns"`
	Rate    float64       `json:"rate"`
	// Latency summarizes each LatencyOf (a request, a batch, an export).
	Latency   *Latency `json:"latency,omitempty"`
	LatencyOf string   `json:"latency_of,omitempty"`
	// Failures counts failed operations by kind ("HTTP 503", "transport").
	Failures map[string]int64 `json:"failures,omitempty"`
	// FailureExample is one failure message.
	FailureExample string `json:"failure_example,omitempty"`
	// PeakRSS is the peak resident set of RSSOf during the measurement.
	PeakRSS int64  `json:"peak_rss"`
	RSSOf   string `json:"rss_of"`
	// StartRSS is the resident set when the measurement began: a Go
	// process seldom gives memory back, so PeakRSS is never below it.
	StartRSS int64 `json:"start_rss"`
	// CPUServer and CPUHarness are the cores the server and the harness
	// used on average during the measurement.
	CPUServer  float64 `json:"cpu_server_cores"`
	CPUHarness float64 `json:"cpu_harness_cores"`
	// Extra holds scenario details (files and bytes of an export).
	Extra string `json:"extra,omitempty"`
	// Profile is the server CPU profile file, if one was taken.
	Profile string   `json:"profile,omitempty"`
	Target  Target   `json:"target"`
	Verdict string   `json:"verdict"`
	Misses  []string `json:"misses,omitempty"`
}

// SizeRun is every scenario at one data set size.
type SizeRun struct {
	// Requested is the asked-for size; Resources the data set's actual
	// size, Patients its patients.
	Requested int `json:"requested"`
	Resources int `json:"resources"`
	Patients  int `json:"patients"`
	// ServerPeakRSS is the server's peak over its whole life.
	ServerPeakRSS int64 `json:"server_peak_rss"`
	// DataGeneration is how long generating the NDJSON took (0 when an
	// earlier run's files were reused).
	DataGeneration time.Duration `json:"data_generation_ns"`
	Results        []Result      `json:"results"`
}

// Report is the outcome of a run.
type Report struct {
	Machine     Machine   `json:"machine"`
	Backend     string    `json:"backend"`
	Database    string    `json:"database"`
	CommandLine string    `json:"command_line"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	// LoadBefore and LoadAfter are /proc/loadavg at start and end: the
	// machine may be shared.
	LoadBefore  string    `json:"load_before"`
	LoadAfter   string    `json:"load_after"`
	Concurrency int       `json:"concurrency"`
	Duration    string    `json:"duration"`
	Runs        []SizeRun `json:"runs"`
}

// Run runs the harness: for each size, a fresh database and server, every
// chosen scenario, then the server stopped and the database dropped.
// It fails only when the run itself cannot go on (no server, no database);
// a scenario's failure is reported in its Result.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	scen, err := expandScenarios(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	cfg.Scenarios = scen
	backend, err := backendOf(cfg.DB)
	if err != nil {
		return nil, err
	}
	if len(cfg.ServerArgv) == 0 {
		return nil, errors.New("bench: Config.ServerArgv is empty: say how to run fhirgate serve")
	}
	work := cfg.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "fhirgate-bench-*"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer cleanWork(work, cfg.WorkDir == "")
	}
	if cfg.ServerProfileDir != "" {
		if err := os.MkdirAll(cfg.ServerProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &Report{
		Machine:     DescribeMachine(),
		Backend:     backend,
		CommandLine: cfg.CommandLine,
		Started:     time.Now().UTC(),
		LoadBefore:  loadAverage(),
		Concurrency: cfg.Concurrency,
		Duration:    cfg.Duration.String(),
	}
	for _, size := range cfg.Sizes {
		run, dbVersion, err := runSize(ctx, cfg, work, size)
		if dbVersion != "" {
			rep.Database = dbVersion
		}
		if run != nil {
			rep.Runs = append(rep.Runs, *run)
		}
		if err != nil {
			rep.Finished, rep.LoadAfter = time.Now().UTC(), loadAverage()
			return rep, err
		}
	}
	rep.Finished, rep.LoadAfter = time.Now().UTC(), loadAverage()
	return rep, nil
}

// cleanWork removes what a run left in its work directory: all of it when
// the harness made it, else everything but the generated data, which a
// later run reuses.
func cleanWork(work string, made bool) {
	if made {
		os.RemoveAll(work)
		return
	}
	entries, _ := os.ReadDir(work)
	for _, e := range entries {
		if e.Name() != "data" {
			os.RemoveAll(filepath.Join(work, e.Name()))
		}
	}
}

// randomSecret is the root secret of one server: never printed.
func randomSecret() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func has(list []string, s string) bool { return slices.Contains(list, s) }

// ParseSize reads a data set size such as 100k, 1M, 2.5M, 3_000_000 or
// 1000000.
func ParseSize(s string) (int, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), "_", "")
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k") || strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "m") || strings.HasSuffix(t, "M"):
		mult, t = 1e6, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v*mult > 1e9 {
		return 0, fmt.Errorf("bench: size %q: want a number of resources such as 100k, 1M or 250000", s)
	}
	return int(math.Round(v * mult)), nil
}
