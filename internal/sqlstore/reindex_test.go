package sqlstore

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
)

// staleIndex simulates a registry change for typ: its rows are gone and
// its state records another fingerprint.
func staleIndex(t *testing.T, s *Store, typ string) {
	t.Helper()
	ctx := context.Background()
	for _, tb := range indexTables {
		if _, err := s.w.ExecContext(ctx, s.d.rebind("DELETE FROM "+tb.name+" WHERE rid IN (SELECT rid FROM resources WHERE type = ?)"), typ); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.ExecContext(ctx, s.d.rebind("UPDATE search_index_state SET fingerprint = 'old', complete = ? WHERE type = ?"), true, typ); err != nil {
		t.Fatal(err)
	}
}

func TestReindex(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		ctx := context.Background()
		loadFixture(t, s)
		if stale, _ := s.StaleTypes(ctx); len(stale) != 0 {
			t.Fatalf("fresh database has stale types %v", stale)
		}
		staleIndex(t, s, "Observation")
		if got := ids(t, s, "Observation", "code=8480-6", SearchSpec{}); len(got) != 0 {
			t.Fatalf("rows still there: %v", got)
		}
		if stale, _ := s.StaleTypes(ctx); !slices.Equal(stale, []string{"Observation"}) {
			t.Fatalf("stale %v", stale)
		}
		// interrupted after the first batch of 2: resumable from there
		cctx, cancel := context.WithCancel(ctx)
		_, err := s.Reindex(cctx, ReindexOptions{Batch: 2, Progress: func(string, int64, int64) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted reindex: %v", err)
		}
		states, _ := s.IndexStates(ctx)
		var st IndexState
		for _, x := range states {
			if x.Type == "Observation" {
				st = x
			}
		}
		if st.Current || !st.Resumable || st.Cursor == 0 {
			t.Fatalf("after interruption: %+v", st)
		}
		res, err := s.Reindex(ctx, ReindexOptions{Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Types, []string{"Observation"}) || res.Resources != 3 {
			t.Fatalf("resumed run: %+v (5 live observations, 2 done before)", res)
		}
		if got := ids(t, s, "Observation", "code=8480-6", SearchSpec{}); !slices.Equal(got, []string{"o1", "o3", "o4"}) {
			t.Fatalf("after reindex: %v", got)
		}
		if stale, _ := s.StaleTypes(ctx); len(stale) != 0 {
			t.Fatalf("still stale: %v", stale)
		}
		// nothing stale: nothing to do; Force rebuilds anyway
		if res, _ := s.Reindex(ctx, ReindexOptions{}); len(res.Types) != 0 {
			t.Fatalf("idle run rebuilt %v", res.Types)
		}
		res, err = s.Reindex(ctx, ReindexOptions{Types: []string{"Patient"}, Force: true})
		if err != nil || res.Resources != 3 {
			t.Fatalf("forced: %+v %v", res, err)
		}
		if got := ids(t, s, "Patient", "name=smi", SearchSpec{}); !slices.Equal(got, []string{"p1", "p2"}) {
			t.Fatalf("after forced reindex: %v", got)
		}
		if _, err := s.Reindex(ctx, ReindexOptions{Types: []string{"Nope"}}); err == nil {
			t.Fatal("unknown type accepted")
		}
	})
}
