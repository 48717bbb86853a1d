package bulk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// cancelTimeout bounds the DELETE sent when an export is abandoned.
const cancelTimeout = 15 * time.Second

// Export runs a whole export: kick-off, polling until the manifest is
// ready, and the download of every file into dir with manifest.json next
// to them (see Kickoff, Job.Wait and Download). When ctx is cancelled or
// PollPolicy.MaxWait passes before the files are on disk, it sends DELETE
// to the status URL so that the server stops working for nobody, and
// reports the outcome of that request in the returned error.
func (c *Client) Export(ctx context.Context, req Request, dir string) (*Result, error) {
	job, err := c.Kickoff(ctx, req)
	if err != nil {
		return nil, err
	}
	res, err := c.complete(ctx, job, dir)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrMaxWait) {
			return nil, job.abandon(ctx, err)
		}
		return nil, err
	}
	if c.Cleanup {
		if err := job.Cancel(ctx); err != nil {
			c.log().Warn("the export is on disk, but telling the server it may delete the files failed", "err", err)
		}
	}
	return res, nil
}

// complete waits for the manifest and downloads the files.
func (c *Client) complete(ctx context.Context, job *Job, dir string) (*Result, error) {
	m, err := job.Wait(ctx)
	if err != nil {
		return nil, err
	}
	c.report(Progress{Phase: PhaseDownloading, FilesTotal: len(m.Files())})
	res, err := c.Download(ctx, m, dir)
	if err != nil {
		return nil, err
	}
	res.StatusURL = job.StatusURL
	return res, nil
}

// abandon deletes the job on the server after cause made us give up. The
// DELETE gets its own short context: ctx is likely cancelled already.
func (j *Job) abandon(ctx context.Context, cause error) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	if err := j.Cancel(dctx); err != nil {
		return fmt.Errorf("%w; deleting the export job at %s failed too: %v", cause, j.StatusURL, err)
	}
	return &AbandonedError{StatusURL: j.StatusURL, Err: cause}
}

// AbandonedError reports an export given up (cancelled or past its maximum
// wait) whose job was then deleted on the server.
type AbandonedError struct {
	StatusURL string // the deleted job's status URL
	Err       error  // why the export was given up
}

// Error says why the export was given up and that the job was deleted.
func (e *AbandonedError) Error() string {
	return fmt.Sprintf("%v (the export job was deleted on the server)", e.Err)
}

// Unwrap returns the cause, so errors.Is(err, context.Canceled) works.
func (e *AbandonedError) Unwrap() error { return e.Err }
