package export

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
)

// leaseWatch wraps the database at the runner's seam and counts the tasks
// this process holds: from a successful claim to the checkpoint that
// finishes the task, or its release.
type leaseWatch struct {
	*sqlstore.Store
	mu      sync.Mutex
	held    map[string]bool
	most    int
	claimed int
}

func taskKey(t *store.ExportTask) string { return fmt.Sprintf("%s/%d", t.JobID, t.Seq) }

func (l *leaseWatch) ClaimExportTask(ctx context.Context, owner string, lease time.Duration) (*store.ExportTask, error) {
	t, err := l.Store.ClaimExportTask(ctx, owner, lease)
	if err == nil {
		l.mu.Lock()
		l.held[taskKey(t)] = true
		l.most = max(l.most, len(l.held))
		l.claimed++
		l.mu.Unlock()
	}
	return t, err
}

func (l *leaseWatch) CheckpointExportTask(ctx context.Context, cp store.ExportCheckpoint) (bool, error) {
	done, err := l.Store.CheckpointExportTask(ctx, cp)
	if err == nil && cp.Task.Done {
		l.drop(&cp.Task)
	}
	return done, err
}

func (l *leaseWatch) ReleaseExportTask(ctx context.Context, t *store.ExportTask) error {
	err := l.Store.ReleaseExportTask(ctx, t)
	l.drop(t)
	return err
}

func (l *leaseWatch) drop(t *store.ExportTask) {
	l.mu.Lock()
	delete(l.held, taskKey(t))
	l.mu.Unlock()
}

func (l *leaseWatch) stats() (most, claimed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.most, l.claimed
}

// TestWorkerLimit: Config.Workers (--export-workers) bounds the tasks one
// process runs at once. An export split into several slow range tasks
// runs them one at a time with one worker, and overlaps them with three,
// which shows the watch would see a broken limit.
func TestWorkerLimit(t *testing.T) {
	for _, c := range []struct {
		workers        int
		least, highest int // bounds on the most tasks held at once
	}{
		{workers: 1, least: 1, highest: 1},
		{workers: 3, least: 2, highest: 3},
	} {
		t.Run(fmt.Sprintf("workers=%d", c.workers), func(t *testing.T) {
			eachDB(t, func(t *testing.T, dbURL string) {
				var watch *leaseWatch
				// 12 resources in ranges of 2 history rows: 6 range tasks,
				// each of 2 pages of one row with a pause after each.
				h := startHarness(t, dbURL, 6, func(c2 *Config, st *sqlstore.Store) {
					watch = &leaseWatch{Store: st, held: map[string]bool{}}
					c2.Store = watch
					c2.Workers = c.workers
					c2.RangeRows, c2.PageSize, c2.PagePause = 2, 1, 40*time.Millisecond
				})
				resp, body := h.await(t, h.kickoff(t, ""))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("export: %d %s", resp.StatusCode, body)
				}
				var m Manifest
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatal(err)
				}
				var n int64
				for _, f := range m.Output {
					n += f.Count
				}
				if n != 12 {
					t.Fatalf("exported %d resources, want 12: %s", n, body)
				}
				most, claimed := watch.stats()
				if claimed < 7 { // the plan task and 6 ranges
					t.Fatalf("%d tasks claimed, want at least 7", claimed)
				}
				if most < c.least || most > c.highest {
					t.Fatalf("%d workers held %d tasks at once, want %d to %d", c.workers, most, c.least, c.highest)
				}
			})
		})
	}
}
