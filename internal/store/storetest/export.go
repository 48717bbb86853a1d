package storetest

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/store"
)

// exportStore opens s as a store.ExportStore, or skips the test for a
// backend without exports.
func exportStore(t *testing.T, open Opener) (store.Store, store.ExportStore) {
	t.Helper()
	s := open(t)
	es, ok := s.(store.ExportStore)
	if !ok {
		t.Skip("the backend does not implement store.ExportStore")
	}
	return s, es
}

func newJob(t testing.TB, es store.ExportStore, id, owner string, tasks ...store.ExportTask) *store.ExportJob {
	t.Helper()
	j := &store.ExportJob{ID: id, Owner: owner, Request: "http://x/fhir/$export", Params: []byte(`{"level":"system"}`)}
	if err := es.CreateExportJob(ctx, j, tasks, 0); err != nil {
		t.Fatalf("create export job: %v", err)
	}
	return j
}

func claim(t testing.TB, es store.ExportStore, owner string, lease time.Duration) *store.ExportTask {
	t.Helper()
	task, err := es.ClaimExportTask(ctx, owner, lease)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return task
}

func testExportJobLifecycle(t *testing.T, open Opener) {
	_, es := exportStore(t, open)
	before := time.Now().Add(-time.Second)
	j := newJob(t, es, "job1", "client-a", store.ExportTask{Seq: 0, Kind: "output", Type: "Patient"},
		store.ExportTask{Seq: 1, Kind: "output", Type: "Observation", Cursor: store.ExportCursor{TS: 5, Seq: math.MaxInt64}})
	if j.Status != store.ExportRunning || j.TransactionTime.Before(before) || j.CreatedAt.IsZero() {
		t.Fatalf("created job %+v", j)
	}
	if err := es.CreateExportJob(ctx, &store.ExportJob{ID: "job1", Owner: "x", Params: []byte("{}")}, nil, 0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second job with the same id: %v", err)
	}
	got, err := es.GetExportJob(ctx, "job1")
	if err != nil || got.Owner != "client-a" || got.Request != j.Request || string(got.Params) != string(j.Params) ||
		!got.TransactionTime.Equal(j.TransactionTime) || got.Status != store.ExportRunning || !got.FinishedAt.IsZero() {
		t.Fatalf("get job = %+v, %v", got, err)
	}
	if _, err := es.GetExportJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown job: %v", err)
	}
	tasks, err := es.ExportTasks(ctx, "job1")
	if err != nil || len(tasks) != 2 || tasks[1].Type != "Observation" || tasks[1].Part != 1 ||
		tasks[1].Cursor != (store.ExportCursor{TS: 5, Seq: math.MaxInt64}) || tasks[1].PartStart != tasks[1].Cursor {
		t.Fatalf("tasks = %+v, %v", tasks, err)
	}

	t0 := claim(t, es, "w1", time.Minute)
	t1 := claim(t, es, "w2", time.Minute)
	if t0.Seq != 0 || t1.Seq != 1 || t0.Token != 1 || t0.LeaseOwner != "w1" || t0.LeaseUntil.Before(time.Now()) {
		t.Fatalf("claims %+v %+v", t0, t1)
	}
	if _, err := es.ClaimExportTask(ctx, "w3", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim with every task leased: %v", err)
	}
	if err := es.RenewExportLease(ctx, t0, 2*time.Minute); err != nil {
		t.Fatalf("renew: %v", err)
	}

	// A checkpoint with a finished part, then the task's end.
	t0.Cursor, t0.Part, t0.Total, t0.State = store.ExportCursor{TS: 10, Seq: 3}, 2, 7, []byte(`{"parts":{}}`)
	t0.PartStart = t0.Cursor
	f := &store.ExportFile{JobID: "job1", Name: "Patient-1.ndjson", Kind: "output", Type: "Patient", Source: "Patient",
		Key: "job1/Patient-1-1.ndjson.gz", TaskSeq: 0, Part: 1, Count: 7, Size: 100, RawSize: 900}
	if done, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t0, File: f}); err != nil || done {
		t.Fatalf("checkpoint = %v, %v", done, err)
	}
	if _, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t0, File: f}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("the same file twice: %v", err)
	}
	if ts, _ := es.ExportTasks(ctx, "job1"); string(ts[0].State) != `{"parts":{}}` || ts[0].Total != 7 {
		t.Fatalf("checkpointed task %+v", ts[0])
	}
	t0.Done = true
	if done, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t0, Retention: time.Hour}); err != nil || done {
		t.Fatalf("first task done = %v, %v; want the job still running", done, err)
	}
	if err := es.RenewExportLease(ctx, t0, time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("renew a done task: %v", err)
	}
	// The second task plans a third, then finishes; the job completes only
	// when the third does.
	t1.Done = true
	if done, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t1,
		NewTasks: []store.ExportTask{{Seq: 2, Kind: "error", Type: "OperationOutcome"}}}); err != nil || done {
		t.Fatalf("second task done = %v, %v", done, err)
	}
	t2 := claim(t, es, "w1", time.Minute)
	if t2.Seq != 2 || t2.Kind != "error" {
		t.Fatalf("planned task %+v", t2)
	}
	t2.Done = true
	if done, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *t2, Retention: time.Hour}); err != nil || !done {
		t.Fatalf("last task done = %v, %v; want the job completed", done, err)
	}
	got, _ = es.GetExportJob(ctx, "job1")
	if got.Status != store.ExportCompleted || got.FinishedAt.IsZero() || got.ExpiresAt.Sub(got.FinishedAt) != time.Hour {
		t.Fatalf("completed job %+v", got)
	}
	files, err := es.ExportFiles(ctx, "job1")
	if err != nil || len(files) != 1 || files[0] != (store.ExportFile{JobID: "job1", Name: "Patient-1.ndjson", Kind: "output",
		Type: "Patient", Source: "Patient", Key: f.Key, Part: 1, Count: 7, Size: 100, RawSize: 900, CreatedAt: files[0].CreatedAt}) {
		t.Fatalf("files = %+v, %v", files, err)
	}
	if g, err := es.GetExportFile(ctx, "job1", "Patient-1.ndjson"); err != nil || g.Key != f.Key {
		t.Fatalf("get file = %+v, %v", g, err)
	}
	if _, err := es.GetExportFile(ctx, "job1", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown file: %v", err)
	}
	if _, err := es.ClaimExportTask(ctx, "w1", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim after completion: %v", err)
	}
	// Expiry: listed for removal once past ExpiresAt, then deleted.
	if rm, err := es.ExportJobsToRemove(ctx, time.Now(), 10); err != nil || len(rm) != 0 {
		t.Fatalf("to remove before expiry = %v, %v", rm, err)
	}
	rm, err := es.ExportJobsToRemove(ctx, time.Now().Add(2*time.Hour), 10)
	if err != nil || len(rm) != 1 || rm[0].ID != "job1" {
		t.Fatalf("to remove after expiry = %v, %v", rm, err)
	}
	if err := es.DeleteExportJob(ctx, "job1"); err != nil {
		t.Fatal(err)
	}
	if _, err := es.GetExportJob(ctx, "job1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted job: %v", err)
	}
	if files, _ := es.ExportFiles(ctx, "job1"); len(files) != 0 {
		t.Fatalf("files of a deleted job: %v", files)
	}
}

func testExportLimitAndPolls(t *testing.T, open Opener) {
	_, es := exportStore(t, open)
	for i := 0; i < 2; i++ {
		j := &store.ExportJob{ID: fmt.Sprintf("j%d", i), Owner: "a", Params: []byte("{}")}
		if err := es.CreateExportJob(ctx, j, nil, 2); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if err := es.CreateExportJob(ctx, &store.ExportJob{ID: "j2", Owner: "a", Params: []byte("{}")}, nil, 2); !errors.Is(err, store.ErrExportLimit) {
		t.Fatalf("third running job: %v", err)
	}
	if err := es.CreateExportJob(ctx, &store.ExportJob{ID: "j3", Owner: "b", Params: []byte("{}")}, nil, 2); err != nil {
		t.Fatalf("another owner: %v", err)
	}
	if n, err := es.CountRunningExports(ctx, "a"); err != nil || n != 2 {
		t.Fatalf("running of a = %d, %v", n, err)
	}
	if err := es.FailExportJob(ctx, "j0", "boom", time.Hour); err != nil {
		t.Fatal(err)
	}
	if j, _ := es.GetExportJob(ctx, "j0"); j.Status != store.ExportFailed || j.Error != "boom" || j.ExpiresAt.IsZero() {
		t.Fatalf("failed job %+v", j)
	}
	if err := es.CreateExportJob(ctx, &store.ExportJob{ID: "j2", Owner: "a", Params: []byte("{}")}, nil, 2); err != nil {
		t.Fatalf("after one failed: %v", err)
	}

	now := time.Now()
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{now, true}, {now.Add(500 * time.Millisecond), false}, {now.Add(time.Second), true}, {now.Add(1500 * time.Millisecond), false}} {
		if ok, err := es.TouchExportJob(ctx, "j3", tc.at, time.Second); err != nil || ok != tc.want {
			t.Fatalf("touch at +%v = %v, %v; want %v", tc.at.Sub(now), ok, err, tc.want)
		}
	}
}

func testExportLeaseFencing(t *testing.T, open Opener) {
	_, es := exportStore(t, open)
	newJob(t, es, "j", "a", store.ExportTask{Seq: 0, Kind: "output", Type: "Patient"})
	old := claim(t, es, "w1", 50*time.Millisecond)
	time.Sleep(120 * time.Millisecond)
	cur := claim(t, es, "w2", time.Minute)
	if cur.Token != old.Token+1 || cur.LeaseOwner != "w2" {
		t.Fatalf("takeover %+v after %+v", cur, old)
	}
	old.Total = 99
	if _, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *old}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("checkpoint with the expired token: %v", err)
	}
	if err := es.RenewExportLease(ctx, old, time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("renew with the expired token: %v", err)
	}
	cur.Total, cur.PartToken = 5, cur.Token
	if _, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *cur}); err != nil {
		t.Fatal(err)
	}
	tasks, _ := es.ExportTasks(ctx, "j")
	if tasks[0].Total != 5 || tasks[0].PartToken != cur.Token {
		t.Fatalf("checkpoint stored %+v", tasks[0])
	}
	// A released lease is claimable at once.
	if err := es.ReleaseExportTask(ctx, cur); err != nil {
		t.Fatal(err)
	}
	again := claim(t, es, "w3", time.Minute)
	if again.Token != cur.Token+1 || again.Total != 5 {
		t.Fatalf("claim after release %+v", again)
	}
}

func testExportCancel(t *testing.T, open Opener) {
	_, es := exportStore(t, open)
	newJob(t, es, "j", "a", store.ExportTask{Seq: 0, Kind: "output", Type: "Patient"}, store.ExportTask{Seq: 1, Kind: "output", Type: "Group"})
	task := claim(t, es, "w1", time.Minute)
	if err := es.CancelExportJob(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	if err := es.CancelExportJob(ctx, "j"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel twice: %v", err)
	}
	if err := es.CancelExportJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
	if err := es.RenewExportLease(ctx, task, time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("renew in a cancelled job: %v", err)
	}
	task.Done = true
	if _, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *task}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("checkpoint in a cancelled job: %v", err)
	}
	if _, err := es.ClaimExportTask(ctx, "w2", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim in a cancelled job: %v", err)
	}
	rm, err := es.ExportJobsToRemove(ctx, time.Now(), 10)
	if err != nil || len(rm) != 1 || rm[0].Status != store.ExportCancelled {
		t.Fatalf("to remove = %+v, %v", rm, err)
	}
	if n, _ := es.CountRunningExports(ctx, "a"); n != 0 {
		t.Fatalf("a cancelled job counts as running")
	}
}

// testExportConcurrentClaims: many workers claiming at once get each task
// once, and the job completes exactly once however the last tasks race.
func testExportConcurrentClaims(t *testing.T, open Opener) {
	_, es := exportStore(t, open)
	const n = 12
	var tasks []store.ExportTask
	for i := 0; i < n; i++ {
		tasks = append(tasks, store.ExportTask{Seq: i, Kind: "output", Type: fmt.Sprintf("T%d", i)})
	}
	newJob(t, es, "j", "a", tasks...)
	var mu sync.Mutex
	seen := map[int]string{}
	completions := 0
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				task, err := es.ClaimExportTask(ctx, fmt.Sprintf("w%d", w), time.Minute)
				if errors.Is(err, store.ErrNotFound) {
					return
				}
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				mu.Lock()
				if prev, dup := seen[task.Seq]; dup {
					t.Errorf("task %d claimed by %s and w%d", task.Seq, prev, w)
				}
				seen[task.Seq] = fmt.Sprint("w", w)
				mu.Unlock()
				task.Done = true
				done, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *task, Retention: time.Hour})
				if err != nil {
					t.Errorf("checkpoint: %v", err)
					return
				}
				if done {
					mu.Lock()
					completions++
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	if len(seen) != n || completions != 1 {
		t.Fatalf("claimed %d of %d tasks, %d completions (want 1)", len(seen), n, completions)
	}
}

// testExportSnapshot: a job sees the versions written before its kick-off
// and none after, and lists deletions in force at its snapshot.
func testExportSnapshot(t *testing.T, open Opener) {
	s, es := exportStore(t, open)
	create(t, s, patient("a", "A1"))
	create(t, s, patient("b", "B1"))
	create(t, s, patient("c", "C1"))
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	update(t, s, patient("a", "A2"), 0)
	if _, err := del(s, "Patient", "b", 0); err != nil {
		t.Fatal(err)
	}
	create(t, s, patient("d", "D1"))
	j := newJob(t, es, "j", "a")
	// After the snapshot: changes that must not show.
	update(t, s, patient("a", "A3"), 0)
	if _, err := del(s, "Patient", "c", 0); err != nil {
		t.Fatal(err)
	}
	update(t, s, patient("b", "B-back"), 0)
	create(t, s, patient("e", "E1"))
	waitReady(t, es, j)

	live := scanAll(t, es, store.SnapshotQuery{Type: "Patient", At: j.TransactionTime, Limit: 2})
	if got := strings.Join(live, " "); got != "c:C1 a:A2 d:D1" { // in (ts, seq) order
		t.Fatalf("live at snapshot: %s", got)
	}
	since := store.ExportCursor{TS: mid.UnixMicro(), Seq: math.MaxInt64}
	changed := scanAll(t, es, store.SnapshotQuery{Type: "Patient", At: j.TransactionTime, After: since})
	if got := strings.Join(changed, " "); got != "a:A2 d:D1" {
		t.Fatalf("changed since: %s", got)
	}
	deleted := scanAll(t, es, store.SnapshotQuery{Type: "Patient", At: j.TransactionTime, After: since, Deleted: true})
	if got := strings.Join(deleted, " "); got != "b:B1" {
		t.Fatalf("deleted since: %s", got)
	}
	for _, q := range []struct {
		q    store.SnapshotQuery
		want bool
	}{
		{store.SnapshotQuery{Type: "Patient", At: j.TransactionTime}, true},
		{store.SnapshotQuery{Type: "Observation", At: j.TransactionTime}, false},
		{store.SnapshotQuery{Type: "Patient", At: j.TransactionTime, After: since, Deleted: true}, true},
		{store.SnapshotQuery{Type: "Patient", At: mid, After: store.ExportCursor{TS: 0}, Deleted: true}, false},
	} {
		if got, err := es.SnapshotHasRows(ctx, q.q); err != nil || got != q.want {
			t.Fatalf("has rows %+v = %v, %v", q.q, got, err)
		}
	}
	// A range scan reads every type in seq order, with the same visibility.
	create(t, s, `{"resourceType":"Basic","id":"x"}`) // after the snapshot: not in it
	maxSeq, err := es.MaxHistorySeq(ctx)
	if err != nil || maxSeq == 0 {
		t.Fatalf("max seq = %d, %v", maxSeq, err)
	}
	var ranged []string
	after := int64(0)
	for {
		n := 0
		err := es.ScanSnapshotRange(ctx, store.SnapshotRangeQuery{At: j.TransactionTime, AfterSeq: after, UpToSeq: maxSeq, Limit: 2},
			func(r store.SnapshotRow) error {
				if r.Cursor.Seq <= after {
					t.Fatalf("range scan out of seq order: %d after %d", r.Cursor.Seq, after)
				}
				n, after = n+1, r.Cursor.Seq
				ranged = append(ranged, r.Type+"/"+r.ID)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			break
		}
	}
	sort.Strings(ranged)
	if got := strings.Join(ranged, " "); got != "Patient/a Patient/c Patient/d" {
		t.Fatalf("range scan at snapshot: %s", got)
	}
	v, err := es.ReadSnapshot(ctx, "Patient", "a", j.TransactionTime)
	if err != nil || v.VersionID != 2 || !strings.Contains(string(v.Body), "A2") {
		t.Fatalf("read a at snapshot = %+v, %v", v, err)
	}
	if _, err := es.ReadSnapshot(ctx, "Patient", "b", j.TransactionTime); !errors.Is(err, store.ErrDeleted) {
		t.Fatalf("read b at snapshot: %v", err)
	}
	if _, err := es.ReadSnapshot(ctx, "Patient", "e", j.TransactionTime); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read e at snapshot: %v", err)
	}
}

// scanAll pages through a snapshot scan and returns "id:family" per row
// (deletions give the family of the version they ended).
func scanAll(t *testing.T, es store.ExportStore, q store.SnapshotQuery) []string {
	t.Helper()
	var out []string
	for {
		n := 0
		err := es.ScanSnapshot(ctx, q, func(r store.SnapshotRow) error {
			n++
			q.After = r.Cursor
			fam := ""
			if i := strings.Index(string(r.Body), `"family":"`); i >= 0 {
				fam = strings.SplitN(string(r.Body)[i+10:], `"`, 2)[0]
			}
			out = append(out, r.ID+":"+fam)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if q.Limit == 0 || n < q.Limit {
			return out
		}
	}
}

// testExportSnapshotInFlight (PostgreSQL): a write transaction that stamped
// its version before the kick-off but commits after it belongs to the
// snapshot, and the snapshot is not ready until it ends; one that stamps
// after the kick-off does not belong to it.
func testExportSnapshotInFlight(t *testing.T, open Opener) {
	s, es := exportStore(t, open)
	if d, ok := s.(interface{ Dialect() string }); !ok || d.Dialect() != "postgres" {
		t.Skip("writers are serialized on this backend: a kick-off cannot overlap a write")
	}
	create(t, s, patient("early", "E"))
	stamped, release := make(chan struct{}), make(chan struct{})
	lateBegun, lateGo := make(chan struct{}), make(chan struct{})
	errs := make(chan error, 2)
	go func() { // stamps before the kick-off, commits after it
		errs <- s.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Create(ctx, mustParse(t, patient("inflight", "I"))); err != nil {
				return err
			}
			close(stamped)
			<-release
			return nil
		})
	}()
	go func() { // begins before the kick-off, stamps after it
		errs <- s.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Read(ctx, "Patient", "early"); err != nil {
				return err
			}
			close(lateBegun)
			<-lateGo
			_, err := tx.Create(ctx, mustParse(t, patient("late", "L")))
			return err
		})
	}()
	var unblock sync.Once
	finish := func() { unblock.Do(func() { close(lateGo); close(release) }) }
	defer finish() // a failing test must not leave the writers hanging
	<-stamped
	<-lateBegun
	j := newJob(t, es, "j", "a")
	if ok, err := es.ExportSnapshotReady(ctx, j); err != nil || ok {
		t.Fatalf("snapshot ready with a writer in flight = %v, %v", ok, err)
	}
	finish()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, es, j)
	live := scanAll(t, es, store.SnapshotQuery{Type: "Patient", At: j.TransactionTime})
	sort.Strings(live)
	if got := strings.Join(live, " "); got != "early:E inflight:I" {
		t.Fatalf("snapshot holds %s, want early and inflight", got)
	}
}

// waitReady waits for a job's snapshot; on PostgreSQL transactions of
// other tests on the same server may delay it a little.
func waitReady(t *testing.T, es store.ExportStore, j *store.ExportJob) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := es.ExportSnapshotReady(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("snapshot not ready after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testExportRestart(t *testing.T, open Opener) {
	_, es := exportStore(t, open)
	j := newJob(t, es, "j", "a", store.ExportTask{Seq: 0, Kind: "output", Type: "Patient"})
	task := claim(t, es, "w1", time.Minute)
	task.Cursor, task.PartBytes, task.PartToken = store.ExportCursor{TS: 3, Seq: 4}, 77, task.Token
	if _, err := es.CheckpointExportTask(ctx, store.ExportCheckpoint{Task: *task}); err != nil {
		t.Fatal(err)
	}
	es2 := open(t).(store.ExportStore)
	got, err := es2.GetExportJob(ctx, "j")
	if err != nil || !got.TransactionTime.Equal(j.TransactionTime) {
		t.Fatalf("job after reopen = %+v, %v", got, err)
	}
	tasks, err := es2.ExportTasks(ctx, "j")
	if err != nil || len(tasks) != 1 || tasks[0].Cursor != task.Cursor || tasks[0].PartBytes != 77 || tasks[0].Token != task.Token {
		t.Fatalf("tasks after reopen = %+v, %v", tasks, err)
	}
}
