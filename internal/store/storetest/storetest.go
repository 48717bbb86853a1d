// Package storetest is the conformance suite every store.Store backend
// runs. A backend's test calls RunTests with a function that opens a store
// on a fresh database; the suite then checks the behaviour the rest of
// fhirgate relies on, including transactions and concurrency.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Opener opens a store on one database. Called twice, it opens the same
// database again (the suite uses that to check what survives a restart).
type Opener func(t testing.TB) store.Store

// RunTests runs the suite. newDB returns an Opener for a fresh database.
func RunTests(t *testing.T, newDB func(t testing.TB) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CreateReadVRead", testCreateReadVRead},
		{"UpdateAndIfMatch", testUpdateAndIfMatch},
		{"UpdateAsCreate", testUpdateAsCreate},
		{"Delete", testDelete},
		{"History", testHistory},
		{"HistoryPagingStableUnderWrites", testHistoryPaging},
		{"TransactionRollsBack", testTransactionRollsBack},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ConcurrentIfMatch", testConcurrentIfMatch},
		{"ConcurrentUpdateAsCreate", testConcurrentUpdateAsCreate},
		{"LockAndScan", testLockAndScan},
		{"Clients", testClients},
		{"Policies", testPolicies},
		{"Replay", testReplay},
		{"SigningKeys", testSigningKeys},
		{"Restart", testRestart},
		{"ExportJobLifecycle", testExportJobLifecycle}, {"ExportLimitAndPolls", testExportLimitAndPolls}, {"ExportLeaseFencing", testExportLeaseFencing}, {"ExportCancel", testExportCancel}, {"ExportConcurrentClaims", testExportConcurrentClaims}, {"ExportSnapshot", testExportSnapshot}, {"ExportSnapshotInFlight", testExportSnapshotInFlight}, {"ExportRestart", testExportRestart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newDB(t))
		})
	}
}

var ctx = context.Background()

func mustParse(t testing.TB, body string) *resource.Resource {
	t.Helper()
	r, err := resource.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func patient(id, family string) string {
	return fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q}]}`, id, family)
}

func create(t testing.TB, s store.Store, body string) *store.Version {
	t.Helper()
	var v *store.Version
	err := s.Write(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.Create(ctx, mustParse(t, body))
		return err
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return v
}

func update(t testing.TB, s store.Store, body string, ifMatch int64) (*store.Version, bool, error) {
	t.Helper()
	var v *store.Version
	var created bool
	err := s.Write(ctx, func(tx store.Tx) error {
		var err error
		v, created, err = tx.Update(ctx, mustParse(t, body), ifMatch)
		return err
	})
	return v, created, err
}

func del(s store.Store, typ, id string, ifMatch int64) (*store.Version, error) {
	var v *store.Version
	err := s.Write(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.Delete(ctx, typ, id, ifMatch)
		return err
	})
	return v, err
}

func testCreateReadVRead(t *testing.T, open Opener) {
	s := open(t)
	v := create(t, s, patient("p1", "Chalmers"))
	if v.VersionID != 1 || v.Method != "POST" || v.LastUpdated.IsZero() {
		t.Fatalf("created %+v", v)
	}
	want := fmt.Sprintf(`{"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":%q},"name":[{"family":"Chalmers"}]}`,
		v.LastUpdated.Format("2006-01-02T15:04:05.000000Z07:00"))
	if string(v.Body) != want {
		t.Fatalf("body\n got %s\nwant %s", v.Body, want)
	}
	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil || string(got.Body) != want || got.VersionID != 1 || !got.LastUpdated.Equal(v.LastUpdated) {
		t.Fatalf("read = %+v, %v", got, err)
	}
	if _, err := s.Read(ctx, "Patient", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read unknown: %v", err)
	}
	if _, err := s.Read(ctx, "Observation", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read other type: %v", err)
	}
	got, err = s.VRead(ctx, "Patient", "p1", 1)
	if err != nil || string(got.Body) != want {
		t.Fatalf("vread = %+v, %v", got, err)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("vread unknown version: %v", err)
	}
	err = s.Write(ctx, func(tx store.Tx) error {
		_, err := tx.Create(ctx, mustParse(t, patient("p1", "Again")))
		return err
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("create existing id: %v", err)
	}
}

func testUpdateAndIfMatch(t *testing.T, open Opener) {
	s := open(t)
	v1 := create(t, s, patient("p1", "A"))
	v2, created, err := update(t, s, patient("p1", "B"), 0)
	if err != nil || created || v2.VersionID != 2 || v2.Method != "PUT" {
		t.Fatalf("update = %+v %v %v", v2, created, err)
	}
	if !v2.LastUpdated.After(v1.LastUpdated) {
		t.Fatalf("lastUpdated did not advance: %v then %v", v1.LastUpdated, v2.LastUpdated)
	}
	if _, _, err := update(t, s, patient("p1", "C"), 1); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("stale If-Match: %v", err)
	}
	v3, _, err := update(t, s, patient("p1", "C"), 2)
	if err != nil || v3.VersionID != 3 {
		t.Fatalf("matching If-Match: %+v %v", v3, err)
	}
	if _, _, err := update(t, s, patient("nobody", "C"), 1); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("If-Match on a missing resource: %v", err)
	}
	old, err := s.VRead(ctx, "Patient", "p1", 1)
	if err != nil || !strings.Contains(string(old.Body), `"A"`) {
		t.Fatalf("version 1 changed: %s %v", old.Body, err)
	}
	cur, _ := s.Read(ctx, "Patient", "p1")
	if !strings.Contains(string(cur.Body), `"C"`) || !strings.Contains(string(cur.Body), `"versionId":"3"`) {
		t.Fatalf("current = %s", cur.Body)
	}
}

func testUpdateAsCreate(t *testing.T, open Opener) {
	s := open(t)
	v, created, err := update(t, s, patient("client-chosen", "A"), 0)
	if err != nil || !created || v.VersionID != 1 || v.Method != "PUT" {
		t.Fatalf("update as create = %+v %v %v", v, created, err)
	}
}

func testDelete(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("p1", "A"))
	if _, err := del(s, "Patient", "p1", 5); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("delete with stale If-Match: %v", err)
	}
	v, err := del(s, "Patient", "p1", 0)
	if err != nil || !v.Deleted || v.VersionID != 2 || v.Body != nil {
		t.Fatalf("delete = %+v %v", v, err)
	}
	got, err := s.Read(ctx, "Patient", "p1")
	if !errors.Is(err, store.ErrDeleted) || got == nil || got.VersionID != 2 || !got.Deleted {
		t.Fatalf("read deleted = %+v %v", got, err)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 2); !errors.Is(err, store.ErrDeleted) {
		t.Fatalf("vread deletion: %v", err)
	}
	if old, err := s.VRead(ctx, "Patient", "p1", 1); err != nil || old.Deleted {
		t.Fatalf("vread before deletion: %+v %v", old, err)
	}
	again, err := del(s, "Patient", "p1", 0)
	if err != nil || again.VersionID != 2 {
		t.Fatalf("second delete = %+v %v (want no new version)", again, err)
	}
	if _, err := del(s, "Patient", "never", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	v3, created, err := update(t, s, patient("p1", "Back"), 0)
	if err != nil || created || v3.VersionID != 3 {
		t.Fatalf("update after delete = %+v %v %v", v3, created, err)
	}
	page, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "p1"})
	if err != nil || len(page.Versions) != 3 || page.Versions[1].Method != "DELETE" || !page.Versions[1].Deleted {
		t.Fatalf("history after delete: %+v %v", page, err)
	}
}

func testHistory(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("a", "1"))
	create(t, s, `{"resourceType":"Observation","id":"o","status":"final"}`)
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	update(t, s, patient("a", "2"), 0)
	create(t, s, patient("b", "1"))

	check := func(name string, q store.HistoryQuery, want ...string) {
		t.Helper()
		page, err := s.History(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, v := range page.Versions {
			got = append(got, fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.VersionID))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: got %v want %v", name, got, want)
		}
	}
	check("system", store.HistoryQuery{}, "Patient/b/1", "Patient/a/2", "Observation/o/1", "Patient/a/1")
	check("type", store.HistoryQuery{Type: "Patient"}, "Patient/b/1", "Patient/a/2", "Patient/a/1")
	check("instance", store.HistoryQuery{Type: "Patient", ID: "a"}, "Patient/a/2", "Patient/a/1")
	check("since", store.HistoryQuery{Since: mid}, "Patient/b/1", "Patient/a/2")
	check("before", store.HistoryQuery{Before: mid}, "Observation/o/1", "Patient/a/1")
	check("unknown instance", store.HistoryQuery{Type: "Patient", ID: "zz"})
}

func testHistoryPaging(t *testing.T, open Opener) {
	s := open(t)
	for i := 0; i < 7; i++ {
		create(t, s, patient(fmt.Sprintf("p%d", i), "x"))
	}
	page, err := s.History(ctx, store.HistoryQuery{Type: "Patient", Count: 3})
	if err != nil || len(page.Versions) != 3 || page.Next == nil {
		t.Fatalf("page 1: %+v %v", page, err)
	}
	// A write between pages must not shift what the next page holds.
	create(t, s, patient("late", "x"))
	var ids []string
	for _, v := range page.Versions {
		ids = append(ids, v.ID)
	}
	for page.Next != nil {
		page, err = s.History(ctx, store.HistoryQuery{Type: "Patient", Count: 3, After: page.Next})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			ids = append(ids, v.ID)
		}
	}
	if got := strings.Join(ids, ","); got != "p6,p5,p4,p3,p2,p1,p0" {
		t.Fatalf("paged ids %s", got)
	}
}

func testTransactionRollsBack(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("keep", "A"))
	boom := errors.New("entry 3 failed")
	err := s.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, mustParse(t, patient("new1", "x"))); err != nil {
			return err
		}
		if _, _, err := tx.Update(ctx, mustParse(t, patient("keep", "changed")), 0); err != nil {
			return err
		}
		if v, err := tx.Read(ctx, "Patient", "keep"); err != nil || v.VersionID != 2 {
			return fmt.Errorf("tx does not see its own write: %+v %v", v, err)
		}
		if _, err := tx.Delete(ctx, "Patient", "keep", 0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v", err)
	}
	if _, err := s.Read(ctx, "Patient", "new1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back create is visible: %v", err)
	}
	v, err := s.Read(ctx, "Patient", "keep")
	if err != nil || v.VersionID != 1 || !strings.Contains(string(v.Body), `"A"`) {
		t.Fatalf("rolled-back update/delete is visible: %+v %v", v, err)
	}
	page, _ := s.History(ctx, store.HistoryQuery{})
	if len(page.Versions) != 1 {
		t.Fatalf("history holds %d versions, want 1", len(page.Versions))
	}
}

// testConcurrentUpdates: 40 concurrent updates of one resource give 41
// distinct versions and no lost update.
func testConcurrentUpdates(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("hot", "v0"))
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, err := update(t, s, patient("hot", fmt.Sprintf("w%d", i)), 0)
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	assertVersions(t, s, "hot", n)
}

// testConcurrentIfMatch: optimistic locking lets exactly one writer win
// each version; losers retry with the new version and nothing is lost.
func testConcurrentIfMatch(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("hot", "v0"))
	const n = 40
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				cur, err := s.Read(ctx, "Patient", "hot")
				if err != nil {
					t.Error(err)
					return
				}
				_, _, err = update(t, s, patient("hot", fmt.Sprintf("w%d", i)), cur.VersionID)
				if errors.Is(err, store.ErrVersionConflict) {
					conflicts.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
				}
				return
			}
		}(i)
	}
	wg.Wait()
	assertVersions(t, s, "hot", n)
	t.Logf("%d If-Match conflicts retried", conflicts.Load())
}

func assertVersions(t *testing.T, s store.Store, id string, writers int) {
	t.Helper()
	page, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: id, Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Versions) != writers+1 {
		t.Fatalf("%d versions, want %d", len(page.Versions), writers+1)
	}
	seenVid := map[int64]bool{}
	seenWriter := map[string]bool{}
	for _, v := range page.Versions {
		if seenVid[v.VersionID] {
			t.Fatalf("version %d twice", v.VersionID)
		}
		seenVid[v.VersionID] = true
		body := string(v.Body)
		i := strings.Index(body, `"family":"`)
		seenWriter[body[i+10:strings.IndexByte(body[i+10:], '"')+i+10]] = true
	}
	for vid := int64(1); vid <= int64(writers+1); vid++ {
		if !seenVid[vid] {
			t.Fatalf("version %d missing", vid)
		}
	}
	for i := 1; i <= writers; i++ {
		if !seenWriter[fmt.Sprintf("w%d", i)] {
			t.Fatalf("update w%d lost", i)
		}
	}
	cur, err := s.Read(ctx, "Patient", id)
	if err != nil || cur.VersionID != int64(writers+1) {
		t.Fatalf("current = %+v %v", cur, err)
	}
}

func testConcurrentUpdateAsCreate(t *testing.T, open Opener) {
	s := open(t)
	const n = 20
	var wg sync.WaitGroup
	var createdCount atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, created, err := update(t, s, patient("new", fmt.Sprintf("w%d", i)), 0)
			if err != nil {
				t.Error(err)
			}
			if created {
				createdCount.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if createdCount.Load() != 1 {
		t.Fatalf("%d writers created the resource, want exactly 1", createdCount.Load())
	}
	cur, err := s.Read(ctx, "Patient", "new")
	if err != nil || cur.VersionID != n {
		t.Fatalf("current = %+v %v", cur, err)
	}
}

func testLockAndScan(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("a", "A"))
	create(t, s, patient("b", "B"))
	create(t, s, `{"resourceType":"Observation","id":"o","status":"final"}`)
	del(s, "Patient", "b", 0)
	var ids []string
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "Patient?identifier=x"); err != nil {
			return err
		}
		return tx.ScanType(ctx, "Patient", func(id string, body []byte) bool {
			ids = append(ids, id)
			return true
		})
	})
	if err != nil || strings.Join(ids, ",") != "a" {
		t.Fatalf("scan = %v, %v (want only the live Patient a)", ids, err)
	}
}

func testClients(t *testing.T, open Opener) {
	s := open(t)
	rev0, err := s.ConfigRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.PutClient(ctx, store.ClientRecord{ID: "c1", Body: []byte(`{"id":"c1"}`), SecretHash: "$argon2id$h1"})
	if err != nil || !created {
		t.Fatalf("put = %v %v", created, err)
	}
	created, err = s.PutClient(ctx, store.ClientRecord{ID: "c1", Body: []byte(`{"id":"c1","active":true}`)})
	if err != nil || created {
		t.Fatalf("replace = %v %v", created, err)
	}
	c, err := s.GetClient(ctx, "c1")
	if err != nil || string(c.Body) != `{"id":"c1","active":true}` || c.SecretHash != "$argon2id$h1" {
		t.Fatalf("get = %+v %v (the hash must survive a put without one)", c, err)
	}
	s.PutClient(ctx, store.ClientRecord{ID: "c1", Body: c.Body, SecretHash: "$argon2id$h2"})
	if c, _ = s.GetClient(ctx, "c1"); c.SecretHash != "$argon2id$h2" {
		t.Fatalf("new hash not stored: %q", c.SecretHash)
	}
	s.PutClient(ctx, store.ClientRecord{ID: "c0", Body: []byte(`{}`)})
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "c0" || list[1].ID != "c1" {
		t.Fatalf("list = %+v %v", list, err)
	}
	if err := s.DeleteClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s.DeleteClient(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	rev1, _ := s.ConfigRevision(ctx)
	if rev1 != rev0+5 {
		t.Fatalf("config revision went %d -> %d, want +5", rev0, rev1)
	}
	testClientCreatedAt(t, s)
}

// testClientCreatedAt: a client's CreatedAt survives a replacement and
// changes when the id is deleted and registered again (what ends the
// tokens of the earlier registration).
func testClientCreatedAt(t *testing.T, s store.Store) {
	t.Helper()
	s.PutClient(ctx, store.ClientRecord{ID: "cr", Body: []byte(`{"id":"cr"}`)})
	first, err := s.GetClient(ctx, "cr")
	if err != nil || first.CreatedAt.IsZero() {
		t.Fatalf("get = %+v %v: want a creation time", first, err)
	}
	time.Sleep(2 * time.Millisecond)
	s.PutClient(ctx, store.ClientRecord{ID: "cr", Body: []byte(`{"id":"cr","active":false}`)})
	replaced, _ := s.GetClient(ctx, "cr")
	if !replaced.CreatedAt.Equal(first.CreatedAt) || !replaced.UpdatedAt.After(first.UpdatedAt) {
		t.Fatalf("replace: created %v -> %v, updated %v -> %v: want created kept, updated later",
			first.CreatedAt, replaced.CreatedAt, first.UpdatedAt, replaced.UpdatedAt)
	}
	if list, _ := s.ListClients(ctx); len(list) == 0 || list[len(list)-1].CreatedAt.IsZero() {
		t.Fatalf("list carries no creation time: %+v", list)
	}
	s.DeleteClient(ctx, "cr")
	time.Sleep(2 * time.Millisecond)
	s.PutClient(ctx, store.ClientRecord{ID: "cr", Body: []byte(`{"id":"cr"}`)})
	again, _ := s.GetClient(ctx, "cr")
	if !again.CreatedAt.After(first.CreatedAt) {
		t.Fatalf("registered again: created %v, first registration %v: want later", again.CreatedAt, first.CreatedAt)
	}
}

func testPolicies(t *testing.T, open Opener) {
	s := open(t)
	rev0, _ := s.ConfigRevision(ctx)
	if created, err := s.PutPolicy(ctx, store.PolicyRecord{ID: "p", Body: []byte(`{"engine":"allow"}`)}); err != nil || !created {
		t.Fatalf("put = %v %v", created, err)
	}
	if created, err := s.PutPolicy(ctx, store.PolicyRecord{ID: "p", Body: []byte(`{"engine":"matcho"}`)}); err != nil || created {
		t.Fatalf("replace = %v %v", created, err)
	}
	p, err := s.GetPolicy(ctx, "p")
	if err != nil || string(p.Body) != `{"engine":"matcho"}` {
		t.Fatalf("get = %+v %v", p, err)
	}
	if list, err := s.ListPolicies(ctx); err != nil || len(list) != 1 {
		t.Fatalf("list = %+v %v", list, err)
	}
	if err := s.DeletePolicy(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx, "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if rev1, _ := s.ConfigRevision(ctx); rev1 != rev0+3 {
		t.Fatalf("config revision went %d -> %d, want +3", rev0, rev1)
	}
}

// testReplay: a jti is usable once per client until it expires; 20 parallel
// uses of one jti give exactly one success.
func testReplay(t *testing.T, open Opener) {
	s := open(t)
	until := time.Now().Add(5 * time.Minute)
	const n = 20
	var wg sync.WaitGroup
	var fresh atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.UseJTI(ctx, "client-a", "jti-1", until)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d of %d parallel uses were fresh, want exactly 1", fresh.Load(), n)
	}
	if ok, _ := s.UseJTI(ctx, "client-b", "jti-1", until); !ok {
		t.Fatal("the same jti of another client must be fresh")
	}
	if ok, _ := s.UseJTI(ctx, "client-c", "old", time.Now().Add(-time.Second)); !ok {
		t.Fatal("first use must be fresh")
	}
	if ok, _ := s.UseJTI(ctx, "client-c", "old", until); !ok {
		t.Fatal("an expired record must not block a new use")
	}
	if ok, _ := s.UseJTI(ctx, "client-c", "old", until); ok {
		t.Fatal("replay accepted")
	}
	s.UseJTI(ctx, "client-d", "gone", time.Now().Add(-time.Minute))
	n2, err := s.PurgeJTIs(ctx, time.Now())
	if err != nil || n2 != 1 {
		t.Fatalf("purge = %d %v, want 1", n2, err)
	}
	if ok, _ := s.UseJTI(ctx, "client-a", "jti-1", until); ok {
		t.Fatal("purge removed a live record")
	}
}

func testSigningKeys(t *testing.T, open Opener) {
	s := open(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	k := store.SigningKey{KID: "k1", Alg: "ES256", Private: []byte("-----BEGIN PRIVATE KEY-----"), CreatedAt: now,
		SignUntil: now.Add(24 * time.Hour), VerifyUntil: now.Add(25 * time.Hour)}
	if err := s.PutSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSigningKey(ctx, k); !errors.Is(err, store.ErrExists) {
		t.Fatalf("put twice: %v", err)
	}
	k.SignUntil = now
	if err := s.UpdateSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSigningKeys(ctx)
	if err != nil || len(list) != 1 || !list[0].SignUntil.Equal(now) || !list[0].VerifyUntil.Equal(k.VerifyUntil) ||
		string(list[0].Private) != string(k.Private) || list[0].Alg != "ES256" {
		t.Fatalf("list = %+v %v", list, err)
	}
	if err := s.DeleteSigningKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateSigningKey(ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update deleted: %v", err)
	}
}

func testRestart(t *testing.T, open Opener) {
	s := open(t)
	create(t, s, patient("p", "A"))
	s.UseJTI(ctx, "c", "j", time.Now().Add(time.Minute))
	s.PutSigningKey(ctx, store.SigningKey{KID: "k", Alg: "ES256", Private: []byte("x"), CreatedAt: time.Now(),
		SignUntil: time.Now().Add(time.Hour), VerifyUntil: time.Now().Add(time.Hour)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t)
	if v, err := s2.Read(ctx, "Patient", "p"); err != nil || v.VersionID != 1 {
		t.Fatalf("after restart: %+v %v", v, err)
	}
	if ok, _ := s2.UseJTI(ctx, "c", "j", time.Now().Add(time.Minute)); ok {
		t.Fatal("replay accepted after restart")
	}
	if keys, _ := s2.ListSigningKeys(ctx); len(keys) != 1 {
		t.Fatalf("signing keys after restart: %d", len(keys))
	}
}
