package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of the export store.
var (
	// ErrExportLimit: the owner already runs the allowed number of exports.
	ErrExportLimit = errors.New("store: too many running exports")
	// ErrLeaseLost: the task's lease passed to another worker, or its job
	// is no longer running (cancelled, failed); the caller must stop.
	ErrLeaseLost = errors.New("store: export lease lost")
)

// ExportStatus is the state of an export job. A job is created running; it
// ends completed or failed, or is cancelled by its client (after which it
// is gone for clients and waits for its files to be removed).
type ExportStatus string

// Export job states.
const (
	ExportRunning   ExportStatus = "running"
	ExportCompleted ExportStatus = "completed"
	ExportFailed    ExportStatus = "failed"
	ExportCancelled ExportStatus = "cancelled"
)

// ExportJob is a Bulk Data export job as stored. The store keeps Params
// opaque: the export package owns their meaning.
type ExportJob struct {
	ID string
	// Owner is the client id that started the job.
	Owner  string
	Status ExportStatus
	// Request is the kick-off URL (the manifest's request).
	Request string
	Params  []byte
	// TransactionTime is the snapshot the job exports: every version
	// written at or before it, nothing written after. CreateExportJob sets
	// it (microsecond precision).
	TransactionTime time.Time
	// Horizon is, on PostgreSQL, a transaction id assigned after
	// TransactionTime was read: once every transaction below it has ended,
	// no version at or before TransactionTime can still appear. 0 on
	// SQLite, whose writers are serialized.
	Horizon    int64
	CreatedAt  time.Time
	FinishedAt time.Time // zero while running
	// ExpiresAt is when a finished job and its files are removed.
	ExpiresAt time.Time
	// Error is the failure diagnostics of a failed job.
	Error string
}

// ExportCursor is a position in the (ts, seq) order of history rows: a
// scan continues after it.
type ExportCursor struct {
	TS  int64 // Unix microseconds
	Seq int64
}

// ExportTask is one unit of work of a job (typically one resource type),
// with its checkpoint and its lease. A task writes numbered parts (files);
// its checkpoint says how far the scan got and how many bytes of the
// current part are durable, so that a worker resuming it after a crash
// neither loses nor repeats a line.
type ExportTask struct {
	JobID string
	Seq   int
	// Kind and Type are the export package's (e.g. "output" and
	// "Observation").
	Kind string
	Type string
	Done bool

	// Cursor is the last history row the checkpoint covers.
	Cursor ExportCursor
	// Part is the number of the part being written (from 1).
	Part int
	// PartStart is Cursor when the current part began.
	PartStart ExportCursor
	// PartBytes, PartCount and PartRaw are the durable stored bytes,
	// resources and uncompressed bytes of the current part.
	PartBytes, PartCount, PartRaw int64
	// PartToken is the lease token of the worker that wrote the durable
	// bytes of the current part (its spool file carries the token).
	PartToken int64
	// Total counts the resources of the finished parts and of the durable
	// bytes of the current one.
	Total int64
	// State is more checkpoint state, opaque to the store (a task that
	// writes several types keeps their parts here).
	State []byte

	// Token grows by one with every claim; a checkpoint carrying an older
	// token is refused (fencing a worker whose lease expired).
	Token      int64
	LeaseOwner string
	LeaseUntil time.Time
}

// ExportFile is a finished file of a job.
type ExportFile struct {
	JobID string
	// Name identifies the file in its URL; unique within the job.
	Name string
	// Kind is the manifest array: "output", "deleted" or "error".
	Kind string
	// Type is the resource type of the lines (the manifest's type).
	Type string
	// Source is the resource type whose permission covers the file (the
	// exported type for output and deleted files; empty for error files).
	Source string
	// Key locates the file in the file storage.
	Key string
	// TaskSeq and Part order the files in the manifest.
	TaskSeq, Part int
	Count         int64
	// Size is the stored (compressed) size; RawSize the uncompressed one.
	Size, RawSize int64
	CreatedAt     time.Time
}

// ExportCheckpoint is the progress a worker records: the task's new state
// (with the token of its lease) and, atomically with it, a finished file
// and tasks planned from this one.
type ExportCheckpoint struct {
	Task     ExportTask
	File     *ExportFile
	NewTasks []ExportTask
	// Retention is how long a job that this checkpoint completes is kept.
	Retention time.Duration
}

// SnapshotQuery selects one page of the history rows of a type visible in
// a snapshot, in (ts, seq) order after a cursor.
type SnapshotQuery struct {
	Type string
	// At is the snapshot (a job's TransactionTime).
	At time.Time
	// After continues a scan; a zero cursor starts at the beginning. To
	// export only changes after _since, start at {TS: since, Seq: MaxInt64}.
	After ExportCursor
	// Deleted lists deletions instead of live versions: resources deleted
	// after the cursor and still deleted at At.
	Deleted bool
	Limit   int
}

// SnapshotRangeQuery selects one page of the history rows of every type
// visible in a snapshot, in seq (physical) order: a full export reads the
// table sequentially instead of jumping between the pages of each type.
type SnapshotRangeQuery struct {
	At time.Time
	// AfterSeq and UpToSeq bound seq: AfterSeq < seq <= UpToSeq.
	AfterSeq, UpToSeq int64
	Limit             int
}

// SnapshotRow is one resource of a snapshot scan.
type SnapshotRow struct {
	Cursor ExportCursor
	// Type is set by range scans.
	Type string
	ID   string
	// Body is the version's exact JSON; for a deletion, the version the
	// deletion ended (nil if unknown).
	Body []byte
}

// ExportStore keeps export jobs, their tasks and files, and reads the
// version snapshots they export.
type ExportStore interface {
	// CreateExportJob stores job with its first tasks in one transaction
	// and fixes the job's snapshot: it sets TransactionTime, Horizon,
	// CreatedAt and Status (running). It returns ErrExportLimit when
	// maxRunning > 0 and the owner has that many running jobs already.
	CreateExportJob(ctx context.Context, job *ExportJob, tasks []ExportTask, maxRunning int) error
	// GetExportJob returns a job in any state; ErrNotFound when unknown.
	GetExportJob(ctx context.Context, id string) (*ExportJob, error)
	// ExportTasks lists the tasks of a job in Seq order.
	ExportTasks(ctx context.Context, jobID string) ([]ExportTask, error)
	// ExportFiles lists the finished files of a job in manifest order.
	ExportFiles(ctx context.Context, jobID string) ([]ExportFile, error)
	// GetExportFile returns one file; ErrNotFound when unknown.
	GetExportFile(ctx context.Context, jobID, name string) (*ExportFile, error)

	// ClaimExportTask leases the next task that is not done, of a running
	// job, and whose lease is free or expired, to owner until now+lease; it
	// increments the task's Token. Concurrent claimers, in any process,
	// never get the same task while its lease holds. ErrNotFound when there
	// is no work.
	ClaimExportTask(ctx context.Context, owner string, lease time.Duration) (*ExportTask, error)
	// RenewExportLease extends the lease of t (matched by its Token);
	// ErrLeaseLost when the lease or the job's running state is gone.
	RenewExportLease(ctx context.Context, t *ExportTask, lease time.Duration) error
	// ReleaseExportTask ends t's lease at once, so that another worker may
	// continue it from its checkpoint (graceful shutdown).
	ReleaseExportTask(ctx context.Context, t *ExportTask) error
	// CheckpointExportTask records cp atomically, only while cp.Task.Token
	// holds the lease and the job runs (else ErrLeaseLost). When the task
	// is done and it was the job's last unfinished task, the job becomes
	// completed, expiring after cp.Retention; jobDone reports that.
	CheckpointExportTask(ctx context.Context, cp ExportCheckpoint) (jobDone bool, err error)
	// FailExportJob marks a running job failed with diagnostics msg.
	FailExportJob(ctx context.Context, id, msg string, retention time.Duration) error
	// CancelExportJob marks a job cancelled, whatever its state, so that
	// clients see it no more; ErrNotFound when unknown or cancelled already.
	CancelExportJob(ctx context.Context, id string) error
	// TouchExportJob records a status poll of job id at now unless the
	// previous one was less than minInterval ago, in which case it
	// records nothing and returns false.
	TouchExportJob(ctx context.Context, id string, now time.Time, minInterval time.Duration) (bool, error)
	// CountRunningExports counts the running jobs of owner.
	CountRunningExports(ctx context.Context, owner string) (int, error)
	// ExportJobsToRemove lists up to limit jobs that are cancelled, or
	// finished and expired before now.
	ExportJobsToRemove(ctx context.Context, now time.Time, limit int) ([]ExportJob, error)
	// DeleteExportJob removes a job with its tasks and file records.
	DeleteExportJob(ctx context.Context, id string) error

	// ExportSnapshotReady reports whether every write that could still
	// commit a version at or before job.TransactionTime has ended, so that
	// a scan of the snapshot is complete (always true on SQLite).
	ExportSnapshotReady(ctx context.Context, job *ExportJob) (bool, error)
	// ScanSnapshot calls fn with one page of rows of q, at most q.Limit;
	// fn's row is valid after the call (its Body is not reused).
	ScanSnapshot(ctx context.Context, q SnapshotQuery, fn func(SnapshotRow) error) error
	// ScanSnapshotRange calls fn with one page of rows of q, at most
	// q.Limit, live versions only.
	ScanSnapshotRange(ctx context.Context, q SnapshotRangeQuery, fn func(SnapshotRow) error) error
	// MaxHistorySeq is the largest seq in history: every version at or
	// before a ready snapshot has a seq at most this.
	MaxHistorySeq(ctx context.Context) (int64, error)
	// SnapshotHasRows reports whether q (its Type, At, After and Deleted)
	// would select any history row, cheaply: it may say true for a type
	// whose rows are all superseded before At.
	SnapshotHasRows(ctx context.Context, q SnapshotQuery) (bool, error)
	// ReadSnapshot returns the version of typ/id visible at at: ErrNotFound
	// when the resource did not exist then, ErrDeleted when it was deleted.
	ReadSnapshot(ctx context.Context, typ, id string, at time.Time) (*Version, error)
}
