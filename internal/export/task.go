package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/store"
)

// execute runs a claimed task to its end (or to an error).
func (s *Service) execute(ctx context.Context, task *store.ExportTask) error {
	job, err := s.st.GetExportJob(ctx, task.JobID)
	if err != nil {
		return err
	}
	if job.Status != store.ExportRunning {
		return store.ErrLeaseLost
	}
	params, err := decodeParams(job)
	if err != nil {
		return err
	}
	if err := s.waitSnapshot(ctx, job); err != nil {
		return err
	}
	switch task.Kind {
	case kindPlan:
		return s.plan(ctx, job, params, task)
	case kindError:
		return s.writeIssues(ctx, job, params, task)
	case kindOutput, kindDeleted:
		return s.exportType(ctx, job, params, task)
	case kindRange:
		return s.exportRange(ctx, job, params, task)
	}
	return fmt.Errorf("export: unknown task kind %q", task.Kind)
}

// waitSnapshot waits until the job's snapshot is final (PostgreSQL: every
// transaction that could still commit a version at or before the
// transactionTime has ended; export.html "transactionTime": the server may
// need to wait for in-flight transactions).
func (s *Service) waitSnapshot(ctx context.Context, job *store.ExportJob) error {
	wait := 10 * time.Millisecond
	start := time.Now()
	warned := false
	for {
		ok, err := s.st.ExportSnapshotReady(ctx, job)
		if err != nil || ok {
			return err
		}
		if !warned && time.Since(start) > time.Minute {
			s.log.Warn("export: waiting over a minute for transactions older than the export's snapshot to end", "job", job.ID)
			warned = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// plan adds the job's real tasks once the snapshot is final. A full
// export (no _since) reads history in ranges, every type at once; an
// export with _since gets one task per type with changes (read through the
// type's index, as few rows changed) and one per type with deletions.
// Either way, a type without data gets no file (export.html: no output
// item for a type without data). One more task writes the error file
// when there are messages.
func (s *Service) plan(ctx context.Context, job *store.ExportJob, params *Params, task *store.ExportTask) error {
	var tasks []store.ExportTask
	add := func(kind, typ string, cur store.ExportCursor, state []byte) {
		tasks = append(tasks, store.ExportTask{Seq: len(tasks) + 1, Kind: kind, Type: typ, Cursor: cur, State: state})
	}
	if params.Since == 0 {
		if err := s.planRanges(ctx, add); err != nil {
			return err
		}
	}
	for _, deleted := range []bool{false, true} {
		if params.Since == 0 {
			break
		}
		for _, t := range params.Types {
			ok, err := s.st.SnapshotHasRows(ctx, store.SnapshotQuery{Type: t, At: job.TransactionTime, After: params.startCursor(), Deleted: deleted})
			if err != nil {
				return err
			}
			if ok && deleted {
				add(kindDeleted, t, params.startCursor(), nil)
			} else if ok {
				add(kindOutput, t, params.startCursor(), nil)
			}
		}
	}
	if len(params.Issues) > 0 {
		add(kindError, "OperationOutcome", store.ExportCursor{}, nil)
	}
	done := *task
	done.Done = true
	_, err := s.st.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: done, NewTasks: tasks, Retention: s.cfg.Retention})
	if err == nil {
		s.notify()
	}
	return err
}

// writeIssues writes the error file: one OperationOutcome per message.
func (s *Service) writeIssues(ctx context.Context, job *store.ExportJob, params *Params, task *store.ExportTask) error {
	tw, err := s.openTask(ctx, job, task)
	if err != nil {
		return err
	}
	defer tw.abort()
	if tw.task.Part > 1 || tw.task.PartCount > 0 {
		// A crash between writing and recording: the lines are few, so
		// start the file over.
		if err := tw.restartPart(); err != nil {
			return err
		}
	}
	for _, is := range params.Issues {
		o := &fhir.OperationOutcome{ResourceType: "OperationOutcome", Issue: []fhir.Issue{is}}
		if err := tw.write(o.JSON()); err != nil {
			return err
		}
	}
	return tw.finish(ctx)
}

// exportType streams the snapshot of one type into its files.
func (s *Service) exportType(ctx context.Context, job *store.ExportJob, params *Params, task *store.ExportTask) error {
	sel, err := s.selector(ctx, job, params, task.Type)
	if err != nil {
		return err
	}
	tw, err := s.openTask(ctx, job, task)
	if err != nil {
		return err
	}
	defer tw.abort()
	pages := s.pages(ctx, tw.task.Cursor, func(after store.ExportCursor, fn func(store.SnapshotRow) error) error {
		return s.st.ScanSnapshot(ctx, store.SnapshotQuery{Type: task.Type, At: job.TransactionTime, After: after,
			Deleted: task.Kind == kindDeleted, Limit: s.cfg.PageSize}, fn)
	})
	for pg := range pages {
		if pg.err != nil {
			return pg.err
		}
		for _, row := range pg.rows {
			if err := s.exportRow(ctx, tw, sel, row); err != nil {
				return err
			}
		}
		if err := s.pause(ctx); err != nil {
			return err
		}
	}
	return tw.finish(ctx)
}

func (s *Service) exportRow(ctx context.Context, tw *taskWriter, sel *selector, row store.SnapshotRow) error {
	ok, err := sel.include(ctx, row.Body)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", sel.typ, row.ID, err)
	}
	var line []byte
	switch {
	case !ok:
	case tw.task.Kind == kindDeleted:
		line = s.deletionBundle(sel.typ, row.ID)
	default:
		if line, err = sel.render(row.Body); err != nil {
			return fmt.Errorf("%s/%s: %w", sel.typ, row.ID, err)
		}
	}
	return tw.advance(ctx, row.Cursor, line)
}

// deletionBundle is a line of a deleted file: a transaction Bundle with a
// DELETE entry (export.html "deleted": request.url and request.method
// SHALL be present).
func (s *Service) deletionBundle(typ, id string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":`)
	u, _ := json.Marshal(s.cfg.BaseURL + "/fhir/" + typ + "/" + id)
	b.Write(u)
	b.WriteString(`,"request":{"method":"DELETE","url":`)
	rel, _ := json.Marshal(typ + "/" + id)
	b.Write(rel)
	b.WriteString(`}}]}`)
	return b.Bytes()
}

// selector builds the filters of one type: the compartment of the
// level's patients, _typeFilter and the grant's query restrictions
// (compiled again here: the worker has no caller, the job keeps them), and
// _elements.
func (s *Service) selector(ctx context.Context, job *store.ExportJob, params *Params, typ string) (*selector, error) {
	sel := &selector{typ: typ, elements: params.elementsFor(typ)}
	for _, raws := range [][]string{params.TypeFilters[typ], params.ScopeFilters[typ]} {
		if len(raws) == 0 {
			continue
		}
		if s.cfg.Matcher == nil {
			return nil, errors.New("export: the job has filters but the server has no query matcher")
		}
		qs, err := queries(raws)
		if err != nil {
			return nil, err
		}
		m, err := s.cfg.Matcher.Compile(ctx, typ, qs)
		if err != nil {
			return nil, err
		}
		sel.matchers = append(sel.matchers, m)
	}
	if params.Level == LevelSystem {
		return sel, nil
	}
	patients, err := s.patientSet(ctx, job, params)
	if err != nil {
		return nil, err
	}
	sel.comp, err = newCompartment(s.cfg.BaseURL+"/fhir", patients, []string{typ})
	return sel, err
}

// patientSet is the set of patients whose compartments a Patient or Group
// export holds: nil (all) or the patient parameter at Patient level; the
// Group's members at the snapshot (restricted to the patient parameter)
// at Group level.
func (s *Service) patientSet(ctx context.Context, job *store.ExportJob, params *Params) (map[string]bool, error) {
	var listed map[string]bool
	if len(params.Patients) > 0 {
		listed = map[string]bool{}
		for _, id := range params.Patients {
			listed[id] = true
		}
	}
	if params.Level != LevelGroup {
		return listed, nil
	}
	v, err := s.st.ReadSnapshot(ctx, "Group", params.GroupID, job.TransactionTime)
	if err != nil {
		return nil, fmt.Errorf("Group/%s at the export's snapshot: %w", params.GroupID, err)
	}
	members, err := s.compartmentOf(nil).groupMembers(v.Body)
	if err != nil {
		return nil, err
	}
	if listed != nil {
		for id := range members {
			if !listed[id] {
				delete(members, id)
			}
		}
	}
	return members, nil
}

// page is one page of a snapshot scan.
type page struct {
	rows []store.SnapshotRow
	err  error
}

// taskWriter writes a task's parts and records its checkpoints.
type taskWriter struct {
	s    *Service
	job  *store.ExportJob
	task store.ExportTask // the state as of the last line written
	gz   *gzip.Writer
	w    *partWriter // nil until the part's first line
	// sinceCheckpoint counts resources written since the last checkpoint.
	sinceCheckpoint int
}

// spoolPath is where a part is written before it is finished; the name
// carries the lease token of its writer.
func (s *Service) spoolPath(jobID string, seq int, typ string, part int, token int64) string {
	return filepath.Join(s.cfg.SpoolDir, jobID, fmt.Sprintf("%d-%s-%d-%d.ndjson.gz", seq, typ, part, token))
}

// openTask resumes a task from its checkpoint: the durable bytes of the
// current part are carried over from the previous holder's spool file; if
// that file is gone (another machine, or a local spool that was lost), the
// part starts over from where it began.
func (s *Service) openTask(ctx context.Context, job *store.ExportJob, task *store.ExportTask) (*taskWriter, error) {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	tw := &taskWriter{s: s, job: job, task: *task, gz: gz}
	if task.PartBytes == 0 {
		return tw, nil
	}
	from := s.spoolPath(job.ID, task.Seq, task.Type, task.Part, task.PartToken)
	w, ok, err := newPartWriter(gz, s.spoolPath(job.ID, task.Seq, task.Type, task.Part, task.Token), from, task.PartBytes)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.log.Warn("export: the spool of a part is gone; redoing the part", "job", job.ID, "task", task.Seq, "part", task.Part)
		return tw, tw.restartPart()
	}
	w.count, w.raw = task.PartCount, task.PartRaw
	tw.w = w
	// Record that the durable bytes are now in our spool file before
	// dropping the previous holder's: a crash in between must not lose
	// both.
	if err := tw.checkpoint(ctx); err != nil {
		return nil, err
	}
	os.Remove(from)
	return tw, nil
}

// restartPart forgets the durable lines of the current part, which will be
// written again from the part's start.
func (tw *taskWriter) restartPart() error {
	if tw.w != nil {
		tw.w.abort()
		tw.w = nil
	}
	t := &tw.task
	t.Total -= t.PartCount
	t.Cursor, t.PartBytes, t.PartCount, t.PartRaw = t.PartStart, 0, 0, 0
	return nil
}

// write appends one line to the current part.
func (tw *taskWriter) write(line []byte) error {
	if tw.w == nil {
		t := &tw.task
		w, _, err := newPartWriter(tw.gz, tw.s.spoolPath(tw.job.ID, t.Seq, t.Type, t.Part, t.Token), "", 0)
		if err != nil {
			return err
		}
		tw.w = w
	}
	if bytes.IndexByte(line, '\n') >= 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, line); err != nil {
			return err
		}
		line = c.Bytes()
	}
	if err := tw.w.write(line); err != nil {
		return err
	}
	tw.task.Total++
	tw.sinceCheckpoint++
	return nil
}

// advance moves past one history row, writing line unless it is nil (the
// row is not exported), and checkpoints or ends the part when due.
func (tw *taskWriter) advance(ctx context.Context, cur store.ExportCursor, line []byte) error {
	if line != nil {
		if err := tw.write(line); err != nil {
			return err
		}
	}
	tw.task.Cursor = cur
	if tw.w == nil {
		return nil
	}
	cfg := tw.s.cfg
	if tw.w.count >= cfg.FileMaxResources || tw.w.raw >= cfg.FileMaxBytes {
		return tw.endPart(ctx, false)
	}
	if tw.sinceCheckpoint >= cfg.CheckpointEvery {
		return tw.checkpoint(ctx)
	}
	return nil
}

// checkpoint makes the current part's lines durable and records them with
// the cursor: a successor resumes exactly here.
func (tw *taskWriter) checkpoint(ctx context.Context) error {
	n, err := tw.w.sync()
	if err != nil {
		return err
	}
	t := &tw.task
	t.PartBytes, t.PartCount, t.PartRaw, t.PartToken = n, tw.w.count, tw.w.raw, t.Token
	if _, err := tw.s.st.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t, Retention: tw.s.cfg.Retention}); err != nil {
		return err
	}
	tw.sinceCheckpoint = 0
	return nil
}

// endPart closes the current part, moves it to the file storage and
// records it as a finished file together with the checkpoint (and the
// task's end when done).
func (tw *taskWriter) endPart(ctx context.Context, done bool) error {
	t := &tw.task
	var file *store.ExportFile
	if tw.w != nil {
		size, err := tw.w.close()
		if err != nil {
			return err
		}
		key := storageKey(tw.job.ID, t.Kind, t.Type, t.Seq, t.Part, t.Token)
		spool := tw.s.spoolPath(tw.job.ID, t.Seq, t.Type, t.Part, t.Token)
		if err := tw.s.cfg.Storage.Put(ctx, key, spool); err != nil {
			return err
		}
		file = &store.ExportFile{JobID: tw.job.ID, Name: fileName(t.Kind, t.Type, t.Seq, t.Part), Kind: t.Kind, Type: fileType(t),
			Source: fileSource(t), Key: key, TaskSeq: t.Seq, Part: t.Part, Count: tw.w.count, Size: size, RawSize: tw.w.raw}
		tw.w = nil
		t.Part++
	}
	t.PartStart, t.PartBytes, t.PartCount, t.PartRaw, t.PartToken = t.Cursor, 0, 0, 0, t.Token
	t.Done = done
	jobDone, err := tw.s.st.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t, File: file, Retention: tw.s.cfg.Retention})
	if err != nil {
		if file != nil {
			tw.s.cfg.Storage.Delete(context.WithoutCancel(ctx), file.Key)
		}
		return err
	}
	tw.sinceCheckpoint = 0
	if jobDone {
		tw.s.log.Info("export completed", "job", tw.job.ID)
	}
	return nil
}

// finish ends the task: the last part (if it has lines) and the task.
func (tw *taskWriter) finish(ctx context.Context) error {
	return tw.endPart(ctx, true)
}

// abort drops an unfinished part's file handle (the spool stays for a
// successor to resume from).
func (tw *taskWriter) abort() {
	if tw.w != nil {
		tw.w.abort()
		tw.w = nil
	}
}
