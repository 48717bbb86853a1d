package loader

import (
	"sync"
	"time"
)

// tally counts what a load has written, per file and in total, and reports
// progress. The consumer and the sink's writers call it concurrently.
type tally struct {
	mu     sync.Mutex
	o      Options
	start  time.Time
	files  []fileState
	totalB int64
	last   string
	// lastDone is when the last file finished: the reader opens a file
	// while the ones before it are still being written, so a file's own
	// time starts no earlier.
	lastDone time.Time
}

// fileState is a FileResult in the making.
type fileState struct {
	FileResult
	started time.Time
	// offset is the input offset of the last written resource.
	offset int64
	// valid is the number of lines handed to the sink, known at eof; the
	// file is finished when they are all settled (written or refused).
	valid, settled int64
	eof, finished  bool
}

func newTally(srcs []Source, o Options) *tally {
	t := &tally{o: o, start: o.Now(), files: make([]fileState, len(srcs))}
	for i, s := range srcs {
		t.files[i].Name = s.Name
		t.totalB += s.Size
	}
	return t
}

// started records that the reader opened file i.
func (t *tally) started(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.files[i].started = t.o.Now()
}

// invalid counts a line that parsing refused, under SkipInvalid.
func (t *tally) invalid(i int, le *LineError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.files[i].Invalid++
	if t.o.OnInvalid != nil {
		t.o.OnInvalid(le)
	}
}

// rejected counts a resource that the destination refused, under
// SkipInvalid.
func (t *tally) rejected(e entry, le *LineError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := &t.files[e.file]
	f.Invalid++
	f.settled++
	if t.o.OnInvalid != nil {
		t.o.OnInvalid(le)
	}
	t.settle(e.file)
}

// eof records that the reader reached the end of file i: bytes read, valid
// lines handed on.
func (t *tally) eof(i int, bytes, valid int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := &t.files[i]
	f.eof, f.Bytes, f.valid = true, bytes, valid
	t.settle(i)
}

// written counts entries the destination stored, and reports progress.
func (t *tally) written(es []entry) {
	if len(es) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range es {
		f := &t.files[e.file]
		f.Resources++
		f.settled++
		f.offset = max(f.offset, e.offset)
	}
	last := es[len(es)-1].file
	t.last = t.files[last].Name
	touched := -1
	for _, e := range es {
		if e.file != touched {
			touched = e.file
			t.settle(e.file)
		}
	}
	t.report(nil)
}

// settle finishes file i once every line of it is accounted for.
func (t *tally) settle(i int) {
	f := &t.files[i]
	if f.finished || !f.eof || f.settled < f.valid {
		return
	}
	f.finished = true
	now := t.o.Now()
	start := f.started
	if t.lastDone.After(start) {
		start = t.lastDone
	}
	f.Elapsed, t.lastDone = now.Sub(start), now
	done := f.FileResult
	t.last = f.Name
	t.report(&done)
}

func (t *tally) report(finished *FileResult) {
	if t.o.OnProgress == nil {
		return
	}
	p := Progress{File: t.last, TotalBytes: t.totalB, Elapsed: t.o.Now().Sub(t.start), Finished: finished}
	for i := range t.files {
		f := &t.files[i]
		p.Resources += f.Resources
		p.Invalid += f.Invalid
		if f.finished {
			p.Bytes += f.Bytes
		} else {
			p.Bytes += f.offset
		}
	}
	t.o.OnProgress(p)
}

// result sums up the load so far.
func (t *tally) result() *Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &Result{Elapsed: t.o.Now().Sub(t.start), Files: make([]FileResult, 0, len(t.files))}
	for _, f := range t.files {
		if f.started.IsZero() {
			continue // never reached
		}
		fr := f.FileResult
		if !f.finished {
			fr.Elapsed = t.o.Now().Sub(f.started)
		}
		if !f.eof {
			fr.Bytes = f.offset
		}
		r.Files = append(r.Files, fr)
		r.Resources += fr.Resources
		r.Invalid += fr.Invalid
		r.Bytes += fr.Bytes
	}
	return r
}
