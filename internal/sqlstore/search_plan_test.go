package sqlstore

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// planShapes are the main search shapes whose plans must use indexes
// (issue 4, "Speed").
var planShapes = []struct{ name, typ, query string }{
	{"token", "Observation", "code=http://loinc.org|4548-4"},
	{"token-code", "Observation", "code=4548-4"},
	{"string-prefix", "Patient", "name=smi"},
	{"date-range", "Observation", "date=2024-03"},
	{"date-ge", "Observation", "date=ge2024-03-01"},
	{"date-ge-lt", "Observation", "date=ge2024-03-01&date=lt2024-03-08"},
	{"reference", "Observation", "subject=Patient/p1"},
	{"chained", "Observation", "subject:Patient.name=smith"},
	{"has", "Patient", "_has:Observation:subject:code=4548-4"},
	{"has-probed", "Patient", "_has:Observation:subject:code=4548-4&name=smi"},
	{"chained-probed", "Observation", "subject:Patient.name=smith&code=4548-4"},
	{"sorted", "Observation", "subject=Patient/p1&_sort=-date"},
	{"sorted-lastupdated", "Observation", "code=4548-4&_sort=_lastUpdated"},
	{"token-and-date", "Observation", "code=4548-4&date=2024-03"},
	{"compartment-style", "Observation", "patient=p1&code=4548-4"},
}

// explain returns the plan of the first page (20 rows) of a search.
func explain(t *testing.T, s *Store, typ, raw string) string {
	t.Helper()
	vals, _ := url.ParseQuery(raw)
	q, _, err := search.ParseQuery(typ, vals, true)
	if err != nil {
		t.Fatal(err)
	}
	c := &compiler{s: s, now: s.now()}
	m, err := c.match(q.Type, q.Where, SearchSpec{})
	if err != nil {
		t.Fatal(err)
	}
	sqlText, args := c.pageSQL(m, sortKeys(q), nil, false, 21)
	ctx := context.Background()
	conn, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prefix := "EXPLAIN QUERY PLAN "
	if s.d.pg {
		// With sequential scans priced out, a Seq Scan left in the plan
		// is one that no index can replace.
		if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, "RESET enable_seqscan")
		prefix = "EXPLAIN "
	}
	rows, err := conn.QueryContext(ctx, prefix+s.d.rebind(sqlText), args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", raw, err, sqlText)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, toString(vals[len(vals)-1]))
	}
	return strings.Join(lines, "\n")
}

func toString(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case string:
		return x
	}
	return ""
}

// fullScan finds a plan step that reads a whole stored table: SQLite's
// "SCAN <table>" on a base table (scans of subquery results are fine) or a
// search on the parameter alone "(pid=?)", which reads all its rows;
// PostgreSQL's "Seq Scan on <table>".
var (
	sqliteScan = regexp.MustCompile(`(?m)^SCAN (idx_\w+|resources|history)\b|^SCAN (t0|a\d+|r|h)( |$)|\(pid=\?\)`)
	pgSeqScan  = regexp.MustCompile(`Seq Scan on (idx_\w+|resources|history)`)
)

// subqueryName finds the names SQLite gives subquery results.
var subqueryName = regexp.MustCompile(`(?m)^(?:CO-ROUTINE|MATERIALIZE) (\w+)`)

// withoutSubqueryScans drops SQLite's scans of subquery results (a
// co-routine or materialized subquery named like a table alias): reading a
// computed result whole is no table scan.
func withoutSubqueryScans(plan string) string {
	for _, m := range subqueryName.FindAllStringSubmatch(plan, -1) {
		plan = regexp.MustCompile(`(?m)^SCAN `+m[1]+`( |$)`).ReplaceAllString(plan, "SCAN subquery ")
	}
	return plan
}

func TestSearchPlansUseIndexes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		loadFixture(t, s)
		for _, sh := range planShapes {
			t.Run(sh.name, func(t *testing.T) {
				plan := explain(t, s, sh.typ, sh.query)
				re := sqliteScan
				if s.d.pg {
					re = pgSeqScan
				}
				if m := re.FindString(withoutSubqueryScans(plan)); m != "" {
					t.Fatalf("%s?%s reads a whole table (%q):\n%s", sh.typ, sh.query, m, plan)
				}
				if testing.Verbose() {
					t.Logf("%s?%s\n%s", sh.typ, sh.query, plan)
				}
			})
		}
	})
}
