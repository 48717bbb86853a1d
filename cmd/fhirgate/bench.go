package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/internal/bench"
)

func init() { register(newBenchCmd) }

// benchOptions are the flags of `fhirgate bench` that are not in
// bench.Config as they are.
type benchOptions struct {
	sizes      []string
	doc        string
	section    string
	jsonOut    string
	cpuprofile string
}

// newBenchCmd builds `fhirgate bench`: the load harness of issue 7.
func newBenchCmd() *cobra.Command {
	var (
		cfg bench.Config
		o   benchOptions
	)
	cmd := &cobra.Command{
		Use:   "bench [--db sqlite|postgres://...] [--resources 100k,1M,...] [--scenarios token,read,...] [--doc docs/BENCHMARKS.md]",
		Short: "Measure a fhirgate server under load and report throughput, latency and peak RSS",
		Long: `Run fhirgate's load harness. For each data set size, bench generates a
deterministic seed data set (reused from --work-dir when it is there), loads it
straight into a fresh database (the "load" scenario, as fhirgate load --db
does), starts "fhirgate serve" from this same binary on it, registers a SMART
backend client with an RS384 key, and runs the scenarios one after another
with a closed-loop load generator on this machine:

  load          the data set into the database, before the server starts
  export        a system-level Bulk Data export, kick-off to all files
                downloaded (first, so that its peak RSS is its own)
  token         POST /auth/token with distinct, pre-signed RS384 assertions
  read          GET /fhir/{type}/{id} with a bearer token, sampled ids
  search        search-token, search-date and search-chain, _count=20
  ingest        another data set as transaction Bundles of PUTs over HTTP

A scenario the server answers with 400, 404, 405 or 501 is reported as not
available. Each row has throughput, p50/p90/p99/max latency, failures by
status, the server's peak RSS (VmHWM from /proc, with the RSS at the start
of the measurement: Go seldom returns memory, so a peak includes what
earlier scenarios left), the CPU used by the server
and by the harness, and the target of issue 7 with pass or miss (targets for
PostgreSQL are twice as lax).

The report is printed as Markdown; --doc puts it into a Markdown file between
<!-- bench:begin NAME --> and <!-- bench:end NAME --> (NAME is --section,
by default the backend), replacing that section only. --json writes the
report for machines ("-" for stdout, which then gets no Markdown).

With a postgres:// --db, a fresh schema is created for each size and dropped
afterwards. --server-profile DIR saves a server CPU profile
(/debug/pprof/profile, as root) of every timed scenario; --cpuprofile
profiles the harness itself.`,
		Example: `  fhirgate bench --resources 100k
  fhirgate bench --resources 100k,1M,3M --scenarios export,search --doc docs/BENCHMARKS.md --section growth-sqlite
  fhirgate bench --db 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' --doc docs/BENCHMARKS.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DB, "db", "sqlite", "database: sqlite (optionally sqlite?PARAMS, e.g. sqlite?synchronous=normal) or a postgres:// DSN on which a fresh schema is made")
	f.StringSliceVar(&o.sizes, "resources", []string{"100k"}, "data set sizes in resources, comma-separated, e.g. 100k,1M,3M; each gets a fresh database and server")
	f.StringSliceVar(&cfg.Scenarios, "scenarios", bench.AllScenarios(), "scenarios to run: load, token, read, search (or search-token, search-date, search-chain), export, ingest")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time of each closed-loop scenario")
	f.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before each closed-loop scenario")
	f.IntVar(&cfg.Concurrency, "concurrency", 32, "load generator connections (closed-loop workers)")
	f.IntVar(&cfg.TokenAssertions, "token-assertions", 30_000, "assertions the token scenario signs beforehand; it ends early when they run out")
	f.IntVar(&cfg.IngestResources, "ingest-resources", 50_000, "size of the data set the ingest scenario posts over HTTP")
	f.IntVar(&cfg.IngestParallel, "ingest-parallel", 4, "Bundles in flight during ingest")
	f.IntVar(&cfg.IngestBatch, "ingest-batch", 500, "PUT entries per transaction Bundle during ingest")
	f.IntVar(&cfg.LoadBatch, "load-batch", 1000, "resources per database transaction during load")
	f.IntVar(&cfg.ExportRuns, "export-runs", 1, "exports the export scenario runs (the row shows the mean)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the data set (the ingest data set uses seed+1)")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "directory for data, databases, server logs and downloads (default: a temporary one, removed); generated data stays there for the next run")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the work directory, server logs and the PostgreSQL schema")
	f.StringArrayVar(&cfg.ServeArgs, "serve-arg", nil, "extra flag for fhirgate serve, e.g. --serve-arg=--export-workers=4; repeat for more")
	f.StringVar(&cfg.ServerProfileDir, "server-profile", "", "directory for server CPU profiles of each timed scenario (from /debug/pprof)")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the harness to this file")
	f.StringVar(&o.doc, "doc", "", "Markdown file to write the report into, between bench markers (e.g. docs/BENCHMARKS.md)")
	f.StringVar(&o.section, "section", "", "name of the section in --doc (default: the backend, sqlite or postgres)")
	f.StringVar(&o.jsonOut, "json", "", `write the report as JSON to this file ("-" for stdout)`)
	return cmd
}

func runBench(cmd *cobra.Command, cfg bench.Config, o benchOptions) error {
	for _, s := range o.sizes {
		n, err := bench.ParseSize(s)
		if err != nil {
			return usageError("bench: --resources: %v", err)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if cfg.Concurrency < 1 {
		return usageError("bench: --concurrency must be at least 1, got %d", cfg.Concurrency)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: cannot find this binary to run fhirgate serve: %w", err)
	}
	cfg.ServerArgv = []string{exe, "serve"}
	cfg.CommandLine = benchCommandLine(os.Args)
	cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	if o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer stop()
	}
	rep, runErr := bench.Run(cmd.Context(), cfg)
	if rep == nil {
		return runErr
	}
	md := rep.Markdown()
	if o.jsonOut != "-" {
		fmt.Fprint(cmd.OutOrStdout(), md)
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if o.jsonOut == "-" {
			cmd.OutOrStdout().Write(b)
		} else if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return fmt.Errorf("bench: --json: %w", err)
		}
	}
	// A failed or interrupted run prints what it has but leaves the
	// Markdown file alone: a partial table must not replace a whole one.
	if o.doc != "" && runErr == nil {
		section := o.section
		if section == "" {
			section = rep.Backend
		}
		if err := bench.WriteSection(o.doc, section, md); err != nil {
			return err
		}
	}
	return runErr
}

// benchCommandLine is the command as typed, for the report: the binary by
// its base name, and the password of a PostgreSQL DSN masked.
func benchCommandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if i == 0 {
			a = "fhirgate"
		}
		out[i] = shellQuote(maskDSN(a))
	}
	return strings.Join(out, " ")
}

// shellQuote single-quotes an argument that a POSIX shell would otherwise
// split or expand.
func shellQuote(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,/:=@+%") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// maskDSN hides the password of a postgres:// URL inside a. The rest of
// the argument stays as typed.
func maskDSN(a string) string {
	i := strings.Index(a, "://")
	if i < 0 || !strings.Contains(a[:i], "postgres") {
		return a
	}
	rest := a[i+3:]
	at := strings.Index(rest, "@")
	colon := strings.Index(rest, ":")
	if at < 0 || colon < 0 || colon > at {
		return a
	}
	return a[:i+3] + rest[:colon] + ":xxxxx" + rest[at:]
}
