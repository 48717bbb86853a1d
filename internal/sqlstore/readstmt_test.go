package sqlstore

import (
	"slices"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
)

// TestReadStatementCache: SQLite searches run through prepared statements
// kept by text, give the same answers the second time, and the cache
// stops growing at its bound.
func TestReadStatementCache(t *testing.T) {
	s := openTest(t, func(tb testing.TB) string { return testdb.SQLiteURL(tb) })
	for _, b := range windowData() {
		put(t, s, b)
	}
	first := ids(t, s, "Observation", "date=ge2024-03-01&date=lt2024-04-01", SearchSpec{Count: 5})
	cached := len(s.reads.m)
	if cached == 0 {
		t.Fatal("no prepared statement kept after a search")
	}
	again := ids(t, s, "Observation", "date=ge2024-03-01&date=lt2024-04-01", SearchSpec{Count: 5})
	if !slices.Equal(first, again) || len(s.reads.m) != cached {
		t.Fatalf("second run: %v (first %v), %d statements (first %d)", again, first, len(s.reads.m), cached)
	}
	for n := 1; n <= readStmtMax+10; n++ {
		ids(t, s, "Observation", "date=ge2024-03-01&date=lt2024-04-01", SearchSpec{Count: n})
	}
	if len(s.reads.m) > readStmtMax {
		t.Fatalf("%d statements kept, bound %d", len(s.reads.m), readStmtMax)
	}
}
