package bulk

import (
	"sync"
	"sync/atomic"
	"time"
)

// Phase is the stage an export is in.
type Phase string

// Phases of an export, in order.
const (
	PhaseWaiting     Phase = "waiting"     // kicked off; polling the status URL
	PhaseComplete    Phase = "complete"    // the manifest arrived
	PhaseDownloading Phase = "downloading" // fetching files
	PhaseDone        Phase = "done"        // every file is on disk
)

// Progress is a progress report for a progress bar or a log line.
type Progress struct {
	// Phase is the stage of the export.
	Phase Phase
	// Message is the server's X-Progress text while waiting.
	Message string
	// Polls is the number of status requests so far.
	Polls int
	// FilesTotal and FilesDone count the manifest's files.
	FilesTotal, FilesDone int
	// Resources is the number of NDJSON lines written so far.
	Resources int64
	// Bytes is the number of (uncompressed) bytes written so far.
	Bytes int64
	// File is the file that was just completed, if any.
	File *File
}

// tracker aggregates the progress of parallel downloads and reports it at
// most every interval, plus once per completed file.
type tracker struct {
	c          *Client
	total      int
	done       atomic.Int64
	resources  atomic.Int64
	bytes      atomic.Int64
	interval   time.Duration
	mu         sync.Mutex
	lastReport time.Time
}

func newTracker(c *Client, total int) *tracker {
	return &tracker{c: c, total: total, interval: 100 * time.Millisecond}
}

func (t *tracker) add(resources, bytes int64) {
	t.resources.Add(resources)
	t.bytes.Add(bytes)
	if t.c.OnProgress == nil {
		return
	}
	t.mu.Lock()
	due := time.Since(t.lastReport) >= t.interval
	if due {
		t.lastReport = time.Now()
	}
	t.mu.Unlock()
	if due {
		t.c.report(t.snapshot(PhaseDownloading, nil))
	}
}

func (t *tracker) fileDone(f *File) {
	t.done.Add(1)
	t.c.report(t.snapshot(PhaseDownloading, f))
}

func (t *tracker) snapshot(ph Phase, f *File) Progress {
	return Progress{Phase: ph, FilesTotal: t.total, FilesDone: int(t.done.Load()),
		Resources: t.resources.Load(), Bytes: t.bytes.Load(), File: f}
}
