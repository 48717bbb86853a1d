package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/internal/store"
)

// Run runs the export workers and the sweeper until ctx ends, then waits
// for them: a task being worked on stops at once and releases its lease,
// so another process (or this one, restarted) continues it from its last
// checkpoint. Jobs are rows, not goroutines: whatever process claims a
// task does it, and a killed process loses only the work since its last
// checkpoint, which its successor redoes after the lease expires.
//
// Config.Workers (--export-workers) is a limit per process: this process
// runs at most that many tasks at once, of all jobs together. It does not
// bound the cluster: several processes on one PostgreSQL database each
// run their own workers, and they share the tasks through leases (a task
// is claimed by one worker at a time, FOR UPDATE SKIP LOCKED), so up to
// the sum of their Workers tasks run at once, each exactly once.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweeper(ctx)
	}()
	wg.Wait()
	return nil
}

// worker claims and runs tasks until ctx ends.
func (s *Service) worker(ctx context.Context) {
	idle := time.NewTimer(0)
	defer idle.Stop()
	for {
		task, err := s.st.ClaimExportTask(ctx, s.node, s.cfg.Lease)
		switch {
		case err == nil:
			s.runTask(ctx, task)
			continue
		case ctx.Err() != nil:
			return
		case !errors.Is(err, store.ErrNotFound):
			s.log.Error("export: claiming work failed", "err", err)
		}
		idle.Reset(s.cfg.IdleWait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-idle.C:
		}
	}
}

// runTask runs one claimed task under its lease: a heartbeat renews the
// lease and stops the task when it is lost (job cancelled, or the lease
// expired and another worker took over).
func (s *Service) runTask(ctx context.Context, task *store.ExportTask) {
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hb := make(chan struct{})
	go func() {
		defer close(hb)
		s.heartbeat(tctx, task, cancel)
	}()
	start := time.Now()
	err := s.execute(tctx, task)
	cancel(nil)
	<-hb
	switch {
	case err == nil:
		s.log.Debug("export: task done", "job", task.JobID, "task", task.Seq, "kind", task.Kind, "type", task.Type,
			"duration_ms", time.Since(start).Milliseconds())
		return
	case errors.Is(err, store.ErrLeaseLost), errors.Is(context.Cause(tctx), store.ErrLeaseLost):
		s.log.Info("export: task given up: its job ended or another worker holds it", "job", task.JobID, "task", task.Seq)
	case ctx.Err() != nil:
		s.log.Info("export: task interrupted by shutdown; it resumes from its checkpoint", "job", task.JobID, "task", task.Seq)
	default:
		s.log.Error("export: task failed", "job", task.JobID, "task", task.Seq, "type", task.Type, "err", err)
		if ferr := s.st.FailExportJob(context.WithoutCancel(ctx), task.JobID, taskWhat(task)+" failed; see the server log", s.cfg.Retention); ferr != nil {
			s.log.Error("export: recording the failure failed", "job", task.JobID, "err", ferr)
		}
	}
	// Let a successor start at once instead of waiting for the lease.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if err := s.st.ReleaseExportTask(rctx, task); err != nil {
		s.log.Warn("export: releasing a task failed; it resumes when its lease expires", "job", task.JobID, "err", err)
	}
}

// taskWhat names a task's work for the failure diagnostics of its job.
func taskWhat(t *store.ExportTask) string {
	switch t.Kind {
	case kindRange:
		return "reading the snapshot"
	case kindPlan:
		return "planning the export"
	case kindError:
		return "writing the error file"
	case kindDeleted:
		return "listing deleted " + t.Type + " resources"
	}
	return "exporting " + t.Type
}

func (s *Service) heartbeat(ctx context.Context, task *store.ExportTask, stop context.CancelCauseFunc) {
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lt := *task
		err := s.st.RenewExportLease(ctx, &lt, s.cfg.Lease)
		if errors.Is(err, store.ErrLeaseLost) {
			stop(store.ErrLeaseLost)
			return
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("export: renewing a lease failed", "job", task.JobID, "err", err)
		}
	}
}

// sweeper removes cancelled exports and expired ones with their files.
func (s *Service) sweeper(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("export: removing old exports failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.sweep:
		}
	}
}

// Sweep removes cancelled exports, and finished ones past their
// expiry, with their files. It leaves alone a cancelled job whose tasks a
// worker still holds (its next checkpoint fails, it releases the task, and
// a later sweep removes the job), and an expired job with a download in
// flight in this process (export.html: files SHOULD NOT be deleted while a
// client downloads them).
func (s *Service) Sweep(ctx context.Context) error {
	jobs, err := s.st.ExportJobsToRemove(ctx, s.now(), 100)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if s.downloading(j.ID) && j.Status != store.ExportCancelled {
			continue
		}
		held, err := s.leased(ctx, j.ID)
		if err != nil {
			return err
		}
		if held {
			continue
		}
		if err := s.cfg.Storage.DeletePrefix(ctx, j.ID+"/"); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Join(s.cfg.SpoolDir, j.ID)); err != nil {
			return err
		}
		if err := s.st.DeleteExportJob(ctx, j.ID); err != nil {
			return err
		}
		s.log.Info("export removed", "job", j.ID, "status", j.Status)
	}
	return nil
}

func (s *Service) leased(ctx context.Context, jobID string) (bool, error) {
	tasks, err := s.st.ExportTasks(ctx, jobID)
	if err != nil {
		return false, err
	}
	now := s.now()
	for _, t := range tasks {
		if !t.Done && t.LeaseUntil.After(now) {
			return true, nil
		}
	}
	return false, nil
}
