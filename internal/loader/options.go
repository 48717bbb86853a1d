package loader

import (
	"fmt"
	"runtime"
	"time"

	"github.com/fhirgate/fhirgate/internal/resource"
)

// Defaults of Options.
const (
	// DefaultStoreBatch is the number of resources per database
	// transaction of ToStore. Measured on SQLite (docs/BENCHMARKS.md,
	// "Ingest"): 250 to 1,000 load at about the same rate; smaller batches
	// pay the commit too often. (Larger batches used to get slower while
	// the SQLite store wrapped every transaction in a savepoint; it no
	// longer does when a group commits without failures.)
	DefaultStoreBatch = 500
	// DefaultServerBatch is the number of PUT entries per Bundle of
	// ToServer; the server writes a transaction Bundle in one database
	// transaction, so the same measurement holds.
	DefaultServerBatch = 100
	// DefaultParallel is the number of batches in flight: enough that
	// the SQLite store commits several together (one fsync for them all)
	// and that PostgreSQL and servers write several at once.
	DefaultParallel = 4
	// DefaultMaxLineBytes is the longest line accepted: one resource, so
	// large Binary or DocumentReference resources fit.
	DefaultMaxLineBytes = 64 << 20
)

// Options tune a load.
type Options struct {
	// prepare, set by ToStore when the store offers it, does a resource's
	// write preparation (search index extraction) in the parse workers.
	prepare func(*resource.Resource) error
	// BatchSize is the number of resources per database transaction
	// (ToStore) or per Bundle (ToServer); zero means DefaultStoreBatch or
	// DefaultServerBatch.
	BatchSize int
	// Parallel is the number of batches being written at once; zero means
	// DefaultParallel. A batch waits for those in flight that change one
	// of its resources, so a repeated id always ends as its later line.
	Parallel int
	// Workers is the number of goroutines that parse and validate lines;
	// zero means GOMAXPROCS.
	Workers int
	// SkipInvalid skips invalid lines (counting them, and reporting each
	// to OnInvalid) instead of stopping at the first one.
	SkipInvalid bool
	// MaxLineBytes is the longest line accepted; zero means
	// DefaultMaxLineBytes.
	MaxLineBytes int
	// OnProgress, when set, is called after each batch is written and when
	// a file is finished, one call at a time.
	OnProgress func(Progress)
	// OnInvalid, when set, receives each line skipped under SkipInvalid,
	// one call at a time.
	OnInvalid func(*LineError)
	// Now is the clock for rates; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults(batch int) Options {
	if o.BatchSize <= 0 {
		o.BatchSize = batch
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Progress is a snapshot of a running load.
type Progress struct {
	// File is the file that was last written to.
	File string
	// Resources counts the resources written so far, every file included;
	// Invalid the lines skipped.
	Resources, Invalid int64
	// Bytes counts the input consumed by written resources, as stored
	// (compressed bytes for gzip files); TotalBytes is the size of every
	// input together, 0 when unknown.
	Bytes, TotalBytes int64
	// Elapsed is the time since the load started.
	Elapsed time.Duration
	// Finished is set when this report is the end of a file: every line
	// of it has been written or skipped.
	Finished *FileResult
}

// FileResult is what a load did with one file.
type FileResult struct {
	Name string
	// Resources is the number of resources written; Invalid the number of
	// lines skipped.
	Resources, Invalid int64
	// Bytes is the size of the file as read.
	Bytes int64
	// Elapsed is the time from opening the file, or from finishing the
	// file before it if that came later, to writing its last resource.
	Elapsed time.Duration
}

// Rate is Resources per second of Elapsed.
func (f FileResult) Rate() float64 { return rate(f.Resources, f.Elapsed) }

// Result is what a load did.
type Result struct {
	// Files are the files in input order.
	Files []FileResult
	// Resources, Invalid and Bytes sum Files.
	Resources, Invalid, Bytes int64
	// Elapsed is the time the whole load took.
	Elapsed time.Duration
}

// Rate is Resources per second of Elapsed.
func (r Result) Rate() float64 { return rate(r.Resources, r.Elapsed) }

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// LineError is an invalid line of an input.
type LineError struct {
	File string
	// Line is the 1-based line number.
	Line int64
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }
