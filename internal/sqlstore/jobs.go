package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fhirgate/fhirgate/internal/store"
)

var _ store.ExportStore = (*Store)(nil)

const jobColumns = `id, owner, status, request, params, tx_time, horizon, created_at, finished_at, expires_at, error`

const taskColumns = `job_id, seq, kind, type, done, cursor_ts, cursor_seq, part, part_start_ts, part_start_seq,
	part_bytes, part_count, part_raw, part_token, total, token, lease_owner, lease_until, state`

const fileColumns = `job_id, name, kind, type, source, storage_key, task_seq, part, count, size, raw_size, created_at`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanJob(r rowScanner) (*store.ExportJob, error) {
	j := &store.ExportJob{}
	var status string
	var tx, created, finished, expires int64
	err := r.Scan(&j.ID, &j.Owner, &status, &j.Request, &j.Params, &tx, &j.Horizon, &created, &finished, &expires, &j.Error)
	if err != nil {
		return nil, err
	}
	j.Status = store.ExportStatus(status)
	j.TransactionTime, j.CreatedAt = fromMicros(tx), fromMicros(created)
	j.FinishedAt, j.ExpiresAt = optMicros(finished), optMicros(expires)
	return j, nil
}

func scanTask(r rowScanner) (*store.ExportTask, error) {
	t := &store.ExportTask{}
	var lease int64
	err := r.Scan(&t.JobID, &t.Seq, &t.Kind, &t.Type, &t.Done, &t.Cursor.TS, &t.Cursor.Seq, &t.Part,
		&t.PartStart.TS, &t.PartStart.Seq, &t.PartBytes, &t.PartCount, &t.PartRaw, &t.PartToken, &t.Total,
		&t.Token, &t.LeaseOwner, &lease, &t.State)
	if err != nil {
		return nil, err
	}
	t.LeaseUntil = optMicros(lease)
	return t, nil
}

func scanFile(r rowScanner) (*store.ExportFile, error) {
	f := &store.ExportFile{}
	var created int64
	err := r.Scan(&f.JobID, &f.Name, &f.Kind, &f.Type, &f.Source, &f.Key, &f.TaskSeq, &f.Part, &f.Count,
		&f.Size, &f.RawSize, &created)
	if err != nil {
		return nil, err
	}
	f.CreatedAt = fromMicros(created)
	return f, nil
}

// nonNil keeps NOT NULL blob columns happy.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// optMicros is fromMicros with 0 meaning "not set".
func optMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

// withTx runs fn in a write transaction (on SQLite through the group
// committer, which owns the writer connection), retrying PostgreSQL
// serialization failures like Write does. fn must use the context it is
// given.
func (s *Store) withTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.inWriteTx(ctx, fn); !s.retryable(err) {
			return err
		}
	}
	return err
}

// execAffected runs one write statement and returns the rows it changed.
func (s *Store) execAffected(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.exec(ctx, func(ctx context.Context, e execer) error {
		res, err := e.ExecContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// CreateExportJob inserts the job and its tasks and fixes the snapshot.
func (s *Store) CreateExportJob(ctx context.Context, job *store.ExportJob, tasks []store.ExportTask, maxRunning int) error {
	return s.withTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if maxRunning > 0 {
			if s.d.pg {
				// Serializes kick-offs of one owner across processes, so two
				// concurrent ones cannot both pass the count.
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "fhirgate-export:"+job.Owner); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM export_jobs WHERE owner = ? AND status = ?"),
				job.Owner, string(store.ExportRunning)).Scan(&n); err != nil {
				return err
			}
			if n >= maxRunning {
				return store.ErrExportLimit
			}
		}
		at, horizon, err := s.snapshotPoint(ctx, tx)
		if err != nil {
			return fmt.Errorf("export snapshot: %w", err)
		}
		now := micros(s.now())
		_, err = tx.ExecContext(ctx, s.d.rebind(`INSERT INTO export_jobs (id, owner, status, request, params, tx_time, horizon, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), job.ID, job.Owner, string(store.ExportRunning), job.Request, job.Params, at, horizon, now)
		if isUniqueViolation(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		if err := s.insertTasks(ctx, tx, job.ID, tasks); err != nil {
			return err
		}
		job.Status, job.TransactionTime, job.Horizon, job.CreatedAt = store.ExportRunning, fromMicros(at), horizon, fromMicros(now)
		return nil
	})
}

func (s *Store) insertTasks(ctx context.Context, tx *sql.Tx, jobID string, tasks []store.ExportTask) error {
	q := s.d.rebind(`INSERT INTO export_tasks (job_id, seq, kind, type, part, cursor_ts, cursor_seq, part_start_ts, part_start_seq, state)
		VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)`)
	for _, t := range tasks {
		if _, err := tx.ExecContext(ctx, q, jobID, t.Seq, t.Kind, t.Type, t.Cursor.TS, t.Cursor.Seq, t.Cursor.TS, t.Cursor.Seq, nonNil(t.State)); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("export task %d of job %s: %w", t.Seq, jobID, store.ErrExists)
			}
			return err
		}
	}
	return nil
}

// GetExportJob returns a job.
func (s *Store) GetExportJob(ctx context.Context, id string) (*store.ExportJob, error) {
	j, err := scanJob(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+jobColumns+" FROM export_jobs WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return j, err
}

// ExportTasks lists a job's tasks.
func (s *Store) ExportTasks(ctx context.Context, jobID string) ([]store.ExportTask, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind("SELECT "+taskColumns+" FROM export_tasks WHERE job_id = ? ORDER BY seq"), jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ExportTask
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// ExportFiles lists a job's files in manifest order.
func (s *Store) ExportFiles(ctx context.Context, jobID string) ([]store.ExportFile, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind("SELECT "+fileColumns+" FROM export_files WHERE job_id = ? ORDER BY task_seq, part, name"), jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ExportFile
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *f)
	}
	return out, rows.Err()
}

// GetExportFile returns one file record.
func (s *Store) GetExportFile(ctx context.Context, jobID, name string) (*store.ExportFile, error) {
	f, err := scanFile(s.r.QueryRowContext(ctx, s.d.rebind("SELECT "+fileColumns+" FROM export_files WHERE job_id = ? AND name = ?"), jobID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return f, err
}

// ClaimExportTask leases the next runnable task. On PostgreSQL, FOR UPDATE
// SKIP LOCKED lets concurrent claimers in several processes pass over a
// task another one is claiming instead of waiting for it; the token
// increment then fences the previous holder of an expired lease.
func (s *Store) ClaimExportTask(ctx context.Context, owner string, lease time.Duration) (*store.ExportTask, error) {
	var claimed *store.ExportTask
	err := s.withTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		lock := ""
		if s.d.pg {
			lock = " FOR UPDATE OF t SKIP LOCKED"
		}
		var jobID string
		var seq int
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT t.job_id, t.seq FROM export_tasks t JOIN export_jobs j ON j.id = t.job_id
			WHERE t.done = ? AND t.lease_until < ? AND j.status = ?
			ORDER BY j.created_at, t.job_id, t.seq LIMIT 1`+lock), false, micros(now), string(store.ExportRunning)).Scan(&jobID, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		claimed, err = scanTask(tx.QueryRowContext(ctx, s.d.rebind(`UPDATE export_tasks SET token = token + 1, lease_owner = ?, lease_until = ?
			WHERE job_id = ? AND seq = ? RETURNING `+taskColumns), owner, micros(now.Add(lease)), jobID, seq))
		return err
	})
	if err != nil {
		return nil, err
	}
	return claimed, nil
}

// RenewExportLease extends a lease that t still holds.
func (s *Store) RenewExportLease(ctx context.Context, t *store.ExportTask, lease time.Duration) error {
	until := s.now().Add(lease)
	n, err := s.execAffected(ctx, `UPDATE export_tasks SET lease_until = ?
		WHERE job_id = ? AND seq = ? AND token = ? AND done = ?
		AND EXISTS (SELECT 1 FROM export_jobs j WHERE j.id = export_tasks.job_id AND j.status = ?)`,
		micros(until), t.JobID, t.Seq, t.Token, false, string(store.ExportRunning))
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrLeaseLost
	}
	t.LeaseUntil = until
	return nil
}

// ReleaseExportTask ends t's lease.
func (s *Store) ReleaseExportTask(ctx context.Context, t *store.ExportTask) error {
	_, err := s.execAffected(ctx, `UPDATE export_tasks SET lease_until = 0, lease_owner = ''
		WHERE job_id = ? AND seq = ? AND token = ?`, t.JobID, t.Seq, t.Token)
	return err
}

// CheckpointExportTask records progress under the task's lease. The job row
// is locked first, so that checkpoints of one job serialize: the last task
// to finish then sees every other one done and completes the job (two
// concurrent finishers could otherwise each see the other unfinished).
func (s *Store) CheckpointExportTask(ctx context.Context, cp store.ExportCheckpoint) (bool, error) {
	var jobDone bool
	err := s.withTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		jobDone = false
		t := cp.Task
		var status string
		err := tx.QueryRowContext(ctx, s.d.rebind("SELECT status FROM export_jobs WHERE id = ?"+s.d.forUpdate()), t.JobID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && status != string(store.ExportRunning)) {
			return store.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE export_tasks SET done = ?, cursor_ts = ?, cursor_seq = ?, part = ?,
			part_start_ts = ?, part_start_seq = ?, part_bytes = ?, part_count = ?, part_raw = ?, part_token = ?, total = ?, state = ?
			WHERE job_id = ? AND seq = ? AND token = ? AND done = ?`),
			t.Done, t.Cursor.TS, t.Cursor.Seq, t.Part, t.PartStart.TS, t.PartStart.Seq, t.PartBytes, t.PartCount, t.PartRaw,
			t.PartToken, t.Total, nonNil(t.State), t.JobID, t.Seq, t.Token, false)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrLeaseLost
		}
		if f := cp.File; f != nil {
			if err := s.insertFile(ctx, tx, f); err != nil {
				return err
			}
		}
		if err := s.insertTasks(ctx, tx, t.JobID, cp.NewTasks); err != nil {
			return err
		}
		if !t.Done {
			return nil
		}
		now := s.now()
		res, err = tx.ExecContext(ctx, s.d.rebind(`UPDATE export_jobs SET status = ?, finished_at = ?, expires_at = ?
			WHERE id = ? AND NOT EXISTS (SELECT 1 FROM export_tasks WHERE job_id = ? AND done = ?)`),
			string(store.ExportCompleted), micros(now), micros(now.Add(cp.Retention)), t.JobID, t.JobID, false)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		jobDone = n == 1
		return nil
	})
	return jobDone, err
}

func (s *Store) insertFile(ctx context.Context, tx *sql.Tx, f *store.ExportFile) error {
	_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO export_files (`+fileColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		f.JobID, f.Name, f.Kind, f.Type, f.Source, f.Key, f.TaskSeq, f.Part, f.Count, f.Size, f.RawSize, micros(s.now()))
	if isUniqueViolation(err) {
		return fmt.Errorf("export file %s of job %s: %w", f.Name, f.JobID, store.ErrExists)
	}
	return err
}

// FailExportJob marks a running job failed.
func (s *Store) FailExportJob(ctx context.Context, id, msg string, retention time.Duration) error {
	now := s.now()
	_, err := s.execAffected(ctx, `UPDATE export_jobs SET status = ?, error = ?, finished_at = ?, expires_at = ?
		WHERE id = ? AND status = ?`, string(store.ExportFailed), msg, micros(now), micros(now.Add(retention)), id, string(store.ExportRunning))
	return err
}

// CancelExportJob marks a job cancelled.
func (s *Store) CancelExportJob(ctx context.Context, id string) error {
	n, err := s.execAffected(ctx, `UPDATE export_jobs SET status = ? WHERE id = ? AND status <> ?`,
		string(store.ExportCancelled), id, string(store.ExportCancelled))
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// TouchExportJob records a poll unless the previous one is too recent.
func (s *Store) TouchExportJob(ctx context.Context, id string, now time.Time, minInterval time.Duration) (bool, error) {
	n, err := s.execAffected(ctx, `UPDATE export_jobs SET polled_at = ? WHERE id = ? AND polled_at <= ?`,
		micros(now), id, micros(now.Add(-minInterval)))
	return n == 1, err
}

// CountRunningExports counts owner's running jobs.
func (s *Store) CountRunningExports(ctx context.Context, owner string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM export_jobs WHERE owner = ? AND status = ?"),
		owner, string(store.ExportRunning)).Scan(&n)
	return n, err
}

// ExportJobsToRemove lists cancelled and expired jobs.
func (s *Store) ExportJobsToRemove(ctx context.Context, now time.Time, limit int) ([]store.ExportJob, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT `+jobColumns+` FROM export_jobs
		WHERE status = ? OR (status IN (?, ?) AND expires_at < ?) ORDER BY created_at LIMIT ?`),
		string(store.ExportCancelled), string(store.ExportCompleted), string(store.ExportFailed), micros(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ExportJob
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *j)
	}
	return out, rows.Err()
}

// DeleteExportJob removes a job's rows.
func (s *Store) DeleteExportJob(ctx context.Context, id string) error {
	return s.withTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range []string{
			"DELETE FROM export_files WHERE job_id = ?",
			"DELETE FROM export_tasks WHERE job_id = ?",
			"DELETE FROM export_jobs WHERE id = ?",
		} {
			if _, err := tx.ExecContext(ctx, s.d.rebind(q), id); err != nil {
				return err
			}
		}
		return nil
	})
}
