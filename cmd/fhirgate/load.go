package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

func init() { register(newLoadCmd) }

// loadScope is the default scope of load --server: PUT is update, and
// create when the resource is new (SMART v2 scopes c and u).
const loadScope = "system/*.cu"

// loadOptions are the load command's own flags.
type loadOptions struct {
	db          string
	batch       int
	workers     int
	parallel    int
	bundle      string
	skipInvalid bool
	cpuprofile  string
}

// newLoadCmd builds `fhirgate load`: NDJSON files into a store or over the
// FHIR API.
func newLoadCmd() *cobra.Command {
	var (
		cf *clientFlags
		o  loadOptions
	)
	cmd := &cobra.Command{
		Use:   "load (--db URL | --server BASE --client-id ID --key private.pem [--kid KID]) FILE...",
		Short: "Load NDJSON files into a fhirgate database (--db) or a FHIR server (--server)",
		Long: `Load FHIR resources from NDJSON files: one resource per line, any resource
types, plain or gzip-compressed (.ndjson, .ndjson.gz). A directory stands for
the NDJSON files in it, so the output of fhirgate seed or fhirgate export
loads as it is.

Every resource keeps its id: loading is an update that creates the resource
when it is new (PUT Type/id), so an interrupted load can simply be run again.

--db URL writes straight into a fhirgate database (sqlite:PATH or
postgres://...), the fast path: lines are parsed on every core and written in
transactions of --batch resources.

--server BASE loads over the FHIR API of BASE (fhirgate's or any FHIR
server's) with transaction Bundles of PUT entries (--bundle batch for batch
Bundles). The client gets its tokens as the token command does (default
scope ` + loadScope + `) and renews them as needed.

Both keep --parallel transactions or Bundles in flight; when an id appears
twice, the later line wins. An invalid line stops the load with its file
and line number, after everything before it is loaded; --skip-invalid
skips and counts invalid lines instead. On a terminal a progress bar shows
bytes and resources; otherwise progress goes to stderr as log lines. The
summary gives the count and rate per file and in total.

--server, --client-id and --key may also come from FHIRGATE_SERVER,
FHIRGATE_CLIENT_ID and FHIRGATE_KEY.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runLoad(cmd, cf, o, args) },
	}
	cf = addClientFlags(cmd, "load")
	f := cmd.Flags()
	cf.scope = loadScope
	f.Lookup("scope").DefValue = loadScope
	f.StringVar(&o.db, "db", "", "load straight into this database: sqlite:PATH or postgres://user:pass@host/db")
	f.IntVar(&o.batch, "batch", 0, fmt.Sprintf("resources per transaction (--db, default %d) or per Bundle (--server, default %d)", loader.DefaultStoreBatch, loader.DefaultServerBatch))
	f.IntVar(&o.workers, "workers", 0, "goroutines parsing lines (default: one per CPU)")
	f.IntVar(&o.parallel, "parallel", loader.DefaultParallel, "batches being written at once: transactions (--db) or Bundles (--server)")
	f.StringVar(&o.bundle, "bundle", loader.Transaction, "Bundle type for --server: transaction (all or nothing per Bundle) or batch")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "skip and count invalid lines instead of stopping at the first")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the load to this file (go tool pprof)")
	return cmd
}

func (o loadOptions) check(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return usageError("load: name the NDJSON files or directories to load, e.g. fhirgate load --db sqlite:./fhirgate-data/fhirgate.db ./seed-data")
	case o.db != "" && cmd.Flags().Changed("server"):
		return usageError("load: give --db (straight into a database) or --server (over the FHIR API), not both")
	case o.db == "" && !cmd.Flags().Changed("server") && os.Getenv(clientEnv["server"]) == "":
		return usageError("load: give --db URL to load straight into a database, or --server BASE with --client-id and --key to load over the FHIR API")
	case o.batch < 0:
		return usageError("load: --batch must be positive, got %d", o.batch)
	case o.parallel < 1:
		return usageError("load: --parallel must be at least 1, got %d", o.parallel)
	case o.bundle != loader.Transaction && o.bundle != loader.Batch:
		return usageError("load: --bundle must be transaction or batch, got %q", o.bundle)
	}
	return nil
}

func runLoad(cmd *cobra.Command, cf *clientFlags, o loadOptions, args []string) error {
	if err := o.check(cmd, args); err != nil {
		return err
	}
	if o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("load: --cpuprofile: %w", err)
		}
		defer stop()
	}
	srcs, err := loader.Files(args...)
	if err != nil {
		return fmt.Errorf("load: %w; name NDJSON files, or directories that hold .ndjson or .ndjson.gz files", err)
	}
	view := newLoadView(cmd.ErrOrStderr(), srcs)
	opts := loader.Options{BatchSize: o.batch, Parallel: o.parallel, Workers: o.workers, SkipInvalid: o.skipInvalid,
		OnProgress: view.progress, OnInvalid: view.invalid}
	var (
		res  *loader.Result
		dest string
	)
	if o.db != "" {
		dest = o.db
		res, err = loadDB(cmd.Context(), o.db, srcs, opts)
	} else {
		var ts *client.TokenSource
		if ts, err = cf.tokenSource(cmd); err != nil {
			view.finish()
			return err
		}
		dest = cf.server
		srv := loader.Server{BaseURL: cf.server, HTTP: ts.Client(), Bundle: o.bundle}
		res, err = loader.ToServer(cmd.Context(), srv, srcs, opts)
	}
	view.finish()
	if err != nil {
		return explainLoad(cf, o, res, err)
	}
	writeLoadSummary(cmd.OutOrStdout(), res, dest)
	return nil
}

// loadDB opens the database and loads into it.
func loadDB(ctx context.Context, dbURL string, srcs []loader.Source, opts loader.Options) (*loader.Result, error) {
	st, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	if err != nil {
		return nil, &dbError{err}
	}
	defer st.Close()
	return loader.ToStore(ctx, st, srcs, opts)
}

// dbError is a failure to open the database.
type dbError struct{ err error }

func (e *dbError) Error() string { return "open database: " + e.err.Error() }
func (e *dbError) Unwrap() error { return e.err }

// explainLoad turns a failed load into the one line the user reads.
func explainLoad(cf *clientFlags, o loadOptions, res *loader.Result, err error) error {
	var (
		le *loader.LineError
		de *dbError
		he *client.HTTPError
	)
	loaded := ""
	if res != nil && res.Resources > 0 {
		loaded = fmt.Sprintf(" (%d resources were loaded before it; loading again is safe, since resources keep their ids)", res.Resources)
	}
	switch {
	case errors.Is(err, context.Canceled):
		n := int64(0)
		if res != nil {
			n = res.Resources
		}
		return fmt.Errorf("load: interrupted after %d resources; run the same command again to finish (resources keep their ids)", n)
	case errors.As(err, &le):
		return fmt.Errorf("load: %w; fix the line, or pass --skip-invalid to skip invalid lines%s", err, loaded)
	case errors.As(err, &de):
		return fmt.Errorf("load: %w; check --db: sqlite:PATH or postgres://user:pass@host/db, and that the database is reachable", err)
	case o.db != "":
		return fmt.Errorf("load: %w%s", err, loaded)
	case errors.As(err, &he) && he.StatusCode == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("load: %w; the Bundles are too large for the server: lower --batch%s", err, loaded)
	}
	e := cf.explain(err)
	return fmt.Errorf("%w%s", e, loaded)
}

// writeLoadSummary prints one line per file and the total.
func writeLoadSummary(w io.Writer, res *loader.Result, dest string) {
	width := 0
	for _, f := range res.Files {
		width = max(width, len(f.Name))
	}
	for _, f := range res.Files {
		fmt.Fprintf(w, "%-*s  %9d resources  %8.2fs  %8.0f resources/s%s\n", width, f.Name, f.Resources,
			f.Elapsed.Seconds(), f.Rate(), skipped(f.Invalid))
	}
	fmt.Fprintf(w, "load: loaded %d resources from %d files (%s) into %s in %.2fs: %.0f resources/s%s\n",
		res.Resources, len(res.Files), humanBytes(res.Bytes), redactDB(dest), res.Elapsed.Seconds(), res.Rate(), skipped(res.Invalid))
}

func skipped(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d invalid lines skipped", n)
}

// redactDB hides the password of a database URL.
func redactDB(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + "@" + rest[at+1:]
}

// loadView shows load progress: a bar on a terminal, log lines otherwise.
type loadView struct {
	progressBase
	shown    int
	lastLog  time.Time
	logEvery time.Duration
}

// maxInvalidShown caps the warnings about skipped lines: the summary counts
// them all.
const maxInvalidShown = 20

func newLoadView(stderr io.Writer, srcs []loader.Source) *loadView {
	var total int64
	for _, s := range srcs {
		total += s.Size
	}
	return &loadView{progressBase: newProgressBase(stderr, total), logEvery: 5 * time.Second}
}

func (v *loadView) progress(p loader.Progress) {
	if v.bar != nil {
		v.bar.Describe(fmt.Sprintf("load: %d resources, %.0f/s", p.Resources, rate(p.Resources, p.Elapsed)))
		v.bar.Set64(p.Bytes)
		return
	}
	switch {
	case p.Finished != nil:
		f := p.Finished
		v.log.Info("loaded file", "file", f.Name, "resources", f.Resources, "invalid", f.Invalid,
			"seconds", round2(f.Elapsed.Seconds()), "resources_per_s", int64(f.Rate()))
	case time.Since(v.lastLog) >= v.logEvery:
		v.lastLog = time.Now()
		v.log.Info("loading", "file", p.File, "resources", p.Resources, "bytes", p.Bytes, "of_bytes", p.TotalBytes,
			"resources_per_s", int64(rate(p.Resources, p.Elapsed)))
	}
}

func (v *loadView) invalid(le *loader.LineError) {
	v.shown++
	switch {
	case v.shown <= maxInvalidShown:
		v.warn("skipped an invalid line", "line", le.Error())
	case v.shown == maxInvalidShown+1:
		v.warn("skipping further invalid lines without a word; the summary counts them")
	}
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// progressBase is a byte progress bar on a terminal, or a logger on
// anything else.
type progressBase struct {
	bar    *progressbar.ProgressBar
	log    *slog.Logger
	stderr io.Writer
}

func newProgressBase(stderr io.Writer, totalBytes int64) progressBase {
	if !isTerminal(stderr) {
		return progressBase{log: slog.New(slog.NewTextHandler(stderr, nil)), stderr: stderr}
	}
	if totalBytes <= 0 {
		totalBytes = -1 // a spinner
	}
	return progressBase{stderr: stderr, bar: progressbar.NewOptions64(totalBytes,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("load"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

// warn logs a warning; on a terminal it clears the bar first so that the
// line stands on its own.
func (b progressBase) warn(msg string, args ...any) {
	if b.bar != nil {
		b.bar.Clear()
		slog.New(slog.NewTextHandler(b.stderr, nil)).Warn(msg, args...)
		return
	}
	b.log.Warn(msg, args...)
}

func (b progressBase) finish() {
	if b.bar != nil {
		b.bar.Exit()
	}
}
