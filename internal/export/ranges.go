package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/fhirgate/fhirgate/internal/store"
)

// kindRange is a task that exports every type of a range of history rows,
// read in seq (physical) order: a full export reads the table sequentially
// once instead of jumping between the pages of each type, which history
// interleaves (on SQLite about 8 µs a row instead of 25).
const kindRange = "range"

// rangeState is the checkpoint of a range task (ExportTask.State); the
// task's Cursor.Seq is where the scan resumes.
type rangeState struct {
	// UpTo is the range's last seq.
	UpTo  int64                 `json:"upTo"`
	Types map[string]*laneState `json:"types,omitempty"`
}

// laneState is the part one type is writing.
type laneState struct {
	Part int `json:"part"`
	// PartStart is the seq after which the current part's lines begin.
	PartStart int64 `json:"partStart"`
	// Bytes, Count and Raw are the durable stored bytes, resources and
	// uncompressed bytes of the current part (in memory: everything
	// submitted).
	Bytes int64 `json:"bytes"`
	Count int64 `json:"count"`
	Raw   int64 `json:"raw"`
	// Token is the lease token of the spool file holding Bytes.
	Token int64 `json:"token"`
	// Total counts the resources of the finished parts.
	Total int64 `json:"total"`
	// Through: the lines of rows with seq <= Through are durable. Equal
	// to the task's cursor, except after a resume that lost a spool file,
	// when the type writes its part again from PartStart.
	Through int64 `json:"through"`
}

// planRanges splits the snapshot's history into range tasks of
// RangeRows rows.
func (s *Service) planRanges(ctx context.Context, add func(kind, typ string, cur store.ExportCursor, state []byte)) error {
	maxSeq, err := s.st.MaxHistorySeq(ctx)
	if err != nil {
		return err
	}
	for from := int64(0); from < maxSeq; from += s.cfg.RangeRows {
		st, _ := json.Marshal(rangeState{UpTo: min(from+s.cfg.RangeRows, maxSeq)})
		add(kindRange, "*", store.ExportCursor{Seq: from}, st)
	}
	return nil
}

// rangeRun is one run of a range task.
type rangeRun struct {
	s      *Service
	job    *store.ExportJob
	params *Params
	task   store.ExportTask
	st     rangeState
	types  map[string]bool
	sels   map[string]*selector
	pend   map[string][]byte
	pipe   *pipeline
	// pos is the seq of the last row handled.
	pos    int64
	sinceC int
}

// exportRange runs a range task from its checkpoint to its end.
func (s *Service) exportRange(ctx context.Context, job *store.ExportJob, params *Params, task *store.ExportTask) error {
	r := &rangeRun{s: s, job: job, params: params, task: *task, types: map[string]bool{},
		sels: map[string]*selector{}, pend: map[string][]byte{}, pipe: newPipeline()}
	if err := json.Unmarshal(task.State, &r.st); err != nil {
		return fmt.Errorf("export: range task state: %w", err)
	}
	if r.st.Types == nil {
		r.st.Types = map[string]*laneState{}
	}
	for _, t := range params.Types {
		r.types[t] = true
	}
	resumed, err := r.resume()
	if err != nil {
		r.closeAdopted()
		return err
	}
	r.pipe.start()
	defer r.pipe.stop()
	if len(resumed) > 0 {
		// Record that the durable bytes are in our spool files now,
		// before dropping the previous holder's.
		if err := r.checkpoint(ctx, nil, false); err != nil {
			return err
		}
		for _, p := range resumed {
			os.Remove(p)
		}
	}
	pages := s.pages(ctx, store.ExportCursor{Seq: r.pos}, func(after store.ExportCursor, fn func(store.SnapshotRow) error) error {
		return s.st.ScanSnapshotRange(ctx, store.SnapshotRangeQuery{At: job.TransactionTime, AfterSeq: after.Seq,
			UpToSeq: r.st.UpTo, Limit: s.cfg.PageSize}, fn)
	})
	for pg := range pages {
		if pg.err != nil {
			return pg.err
		}
		for _, row := range pg.rows {
			if err := r.row(ctx, row); err != nil {
				return err
			}
		}
		if err := s.pause(ctx); err != nil {
			return err
		}
	}
	r.pos = r.st.UpTo
	return r.finish(ctx)
}

// resume carries the durable bytes of each type's part over from the
// previous holder's spool file into ours; a type whose spool file is gone
// writes its part again from its start. It returns the spool files copied.
func (r *rangeRun) resume() ([]string, error) {
	r.pos = r.task.Cursor.Seq
	var copied []string
	for _, typ := range sortedTypes(r.st.Types) {
		ls := r.st.Types[typ]
		if ls.Bytes > 0 {
			from := r.s.spoolPath(r.job.ID, r.task.Seq, typ, ls.Part, ls.Token)
			f, ok, err := copyPrefix(from, r.s.spoolPath(r.job.ID, r.task.Seq, typ, ls.Part, r.task.Token), ls.Bytes)
			if err != nil {
				return nil, err
			}
			if ok {
				r.pipe.adopt(typ, f, ls.Bytes)
				copied = append(copied, from)
			} else {
				r.s.log.Warn("export: the spool of a part is gone; redoing the part", "job", r.job.ID, "task", r.task.Seq, "type", typ)
				ls.Through, ls.Bytes, ls.Count, ls.Raw = ls.PartStart, 0, 0, 0
				copied = append(copied, "")
			}
			ls.Token = r.task.Token
		}
		r.pos = min(r.pos, ls.Through)
	}
	return slices.DeleteFunc(copied, func(p string) bool { return p == "" }), nil
}

func (r *rangeRun) closeAdopted() {
	for _, f := range r.pipe.files {
		f.f.Close()
	}
}

// copyPrefix creates path with the first n bytes of from; ok is false
// when from is missing or shorter.
func copyPrefix(from, path string, n int64) (*os.File, bool, error) {
	src, err := os.Open(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, false, err
	}
	if k, err := io.CopyN(dst, src, n); err != nil || k < n {
		dst.Close()
		os.Remove(path)
		if errors.Is(err, io.EOF) || err == nil {
			return nil, false, nil
		}
		return nil, false, err
	}
	return dst, true, nil
}

// row handles one history row of the range.
func (r *rangeRun) row(ctx context.Context, row store.SnapshotRow) error {
	r.pos = row.Cursor.Seq
	if !r.types[row.Type] {
		return nil
	}
	ls := r.st.Types[row.Type]
	if ls == nil {
		ls = &laneState{Part: 1, PartStart: r.task.Cursor.Seq, Through: r.task.Cursor.Seq, Token: r.task.Token}
		r.st.Types[row.Type] = ls
	}
	if row.Cursor.Seq <= ls.Through {
		return nil // durable already
	}
	sel, err := r.selector(ctx, row.Type)
	if err != nil {
		return err
	}
	ok, err := sel.include(ctx, row.Body)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", row.Type, row.ID, err)
	}
	if !ok {
		return nil
	}
	line, err := sel.render(row.Body)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", row.Type, row.ID, err)
	}
	r.add(row.Type, ls, line)
	if ls.Count >= r.s.cfg.FileMaxResources || ls.Raw >= r.s.cfg.FileMaxBytes {
		return r.endPart(ctx, row.Type, false)
	}
	if r.sinceC++; r.sinceC >= r.s.cfg.CheckpointEvery {
		return r.checkpoint(ctx, nil, false)
	}
	return nil
}

func (r *rangeRun) selector(ctx context.Context, typ string) (*selector, error) {
	if sel := r.sels[typ]; sel != nil {
		return sel, nil
	}
	sel, err := r.s.selector(ctx, r.job, r.params, typ)
	if err != nil {
		return nil, err
	}
	r.sels[typ] = sel
	return sel, nil
}

// add appends a line to the type's batch, handing the batch to the
// pipeline when it is full.
func (r *rangeRun) add(typ string, ls *laneState, line []byte) {
	b := r.pend[typ]
	if b == nil {
		b = rawPool.Get().([]byte)
	}
	b = append(append(b, line...), '\n')
	ls.Count++
	ls.Raw += int64(len(line)) + 1
	if len(b) >= batchBytes {
		r.pipe.submit(typ, r.spool(typ, ls), b)
		b = nil
	}
	r.pend[typ] = b
}

func (r *rangeRun) spool(typ string, ls *laneState) string {
	return r.s.spoolPath(r.job.ID, r.task.Seq, typ, ls.Part, r.task.Token)
}

// flush hands every pending batch to the pipeline.
func (r *rangeRun) flush() {
	for _, typ := range sortedTypes(r.pend) {
		if b := r.pend[typ]; len(b) > 0 {
			r.pipe.submit(typ, r.spool(typ, r.st.Types[typ]), b)
		}
		delete(r.pend, typ)
	}
}

// checkpoint makes every line handled so far durable and records it, with
// file (a finished part) when not nil.
func (r *rangeRun) checkpoint(ctx context.Context, file *store.ExportFile, done bool) error {
	r.flush()
	rep := r.pipe.wait(opSync, "")
	if rep.err != nil {
		return rep.err
	}
	t := &r.task
	t.Total = 0
	for typ, ls := range r.st.Types {
		if n, ok := rep.sizes[typ]; ok {
			ls.Bytes, ls.Token = n, t.Token
		}
		ls.Through = max(ls.Through, r.pos)
		t.Total += ls.Total + ls.Count
	}
	t.Cursor = store.ExportCursor{Seq: r.pos}
	t.Done = done
	var err error
	if t.State, err = json.Marshal(r.st); err != nil {
		return err
	}
	jobDone, err := r.s.st.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t, File: file, Retention: r.s.cfg.Retention})
	if err != nil {
		if file != nil {
			r.s.cfg.Storage.Delete(context.WithoutCancel(ctx), file.Key)
		}
		return err
	}
	r.sinceC = 0
	if jobDone {
		r.s.log.Info("export completed", "job", r.job.ID)
	}
	return nil
}

// endPart closes the type's part, moves it to the storage and records it
// as a finished file with a checkpoint.
func (r *rangeRun) endPart(ctx context.Context, typ string, done bool) error {
	ls := r.st.Types[typ]
	if b := r.pend[typ]; len(b) > 0 {
		r.pipe.submit(typ, r.spool(typ, ls), b)
	}
	delete(r.pend, typ)
	rep := r.pipe.wait(opClose, typ)
	if rep.err != nil {
		return rep.err
	}
	key := storageKey(r.job.ID, kindOutput, typ, r.task.Seq, ls.Part, r.task.Token)
	if err := r.s.cfg.Storage.Put(ctx, key, r.spool(typ, ls)); err != nil {
		return err
	}
	file := &store.ExportFile{JobID: r.job.ID, Name: fileName(kindOutput, typ, r.task.Seq, ls.Part), Kind: kindOutput,
		Type: typ, Source: typ, Key: key, TaskSeq: r.task.Seq, Part: ls.Part, Count: ls.Count, Size: rep.sizes[typ], RawSize: ls.Raw}
	ls.Total += ls.Count
	ls.Part++
	ls.PartStart, ls.Bytes, ls.Count, ls.Raw, ls.Token = r.pos, 0, 0, 0, r.task.Token
	return r.checkpoint(ctx, file, done)
}

// finish ends every open part and the task.
func (r *rangeRun) finish(ctx context.Context) error {
	var open []string
	for _, typ := range sortedTypes(r.st.Types) {
		if r.st.Types[typ].Count > 0 {
			open = append(open, typ)
		}
	}
	for i, typ := range open {
		if err := r.endPart(ctx, typ, i == len(open)-1); err != nil {
			return err
		}
	}
	if len(open) == 0 {
		return r.checkpoint(ctx, nil, true)
	}
	return nil
}

func sortedTypes[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// pause waits PagePause between pages.
func (s *Service) pause(ctx context.Context) error {
	if s.cfg.PagePause > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.PagePause):
		}
	}
	return ctx.Err()
}

// pages reads the pages of a scan ahead of the caller, in their own
// goroutine, so that reading (database) and writing (CPU) overlap. read
// reads one page of the rows after the cursor it is given.
func (s *Service) pages(ctx context.Context, after store.ExportCursor, read func(after store.ExportCursor, fn func(store.SnapshotRow) error) error) <-chan page {
	out := make(chan page, 4)
	go func() {
		defer close(out)
		for {
			var pg page
			pg.err = read(after, func(r store.SnapshotRow) error {
				pg.rows = append(pg.rows, r)
				return nil
			})
			select {
			case out <- pg:
			case <-ctx.Done():
				return
			}
			if pg.err != nil || len(pg.rows) < s.cfg.PageSize {
				return
			}
			after = pg.rows[len(pg.rows)-1].Cursor
		}
	}()
	return out
}
