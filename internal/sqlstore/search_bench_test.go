package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/seed"
)

// The 1M-resource search benchmark (docs/BENCHMARKS.md, "Search"). It is
// skipped unless FHIRGATE_BENCH_SEARCH is set, because loading takes
// minutes:
//
//	FHIRGATE_BENCH_SEARCH=1 \
//	FHIRGATE_BENCH_SQLITE=/tmp/bench1m.db \
//	FHIRGATE_BENCH_POSTGRES='postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable' \
//	go test ./internal/sqlstore -run XXX -bench BenchmarkSearch1M -benchtime 200x -timeout 2h
//
// FHIRGATE_BENCH_PATIENTS sets the size (default 12000 patients, about
// 1M resources). The databases are kept: a second run finds them loaded
// and measures at once (PostgreSQL in schema bench_<patients>).

func benchPatients() int {
	if n, err := strconv.Atoi(os.Getenv("FHIRGATE_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 12000
}

// benchStores opens (loading when empty) the benchmark databases.
func benchStores(b *testing.B) map[string]*Store {
	if os.Getenv("FHIRGATE_BENCH_SEARCH") == "" {
		b.Skip("set FHIRGATE_BENCH_SEARCH=1 (and FHIRGATE_BENCH_SQLITE, FHIRGATE_BENCH_POSTGRES) to run the 1M search benchmark")
	}
	n := benchPatients()
	out := map[string]*Store{}
	if p := os.Getenv("FHIRGATE_BENCH_SQLITE"); p != "" {
		out["sqlite"] = openBench(b, "sqlite:"+p+"?synchronous=normal", n)
	}
	if dsn := os.Getenv("FHIRGATE_BENCH_POSTGRES"); dsn != "" {
		out["postgres"] = openBench(b, benchSchema(b, dsn, n), n)
	}
	return out
}

func benchSchema(b *testing.B, dsn string, n int) string {
	schema := fmt.Sprintf("bench_%d", n)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA IF NOT EXISTS " + schema); err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openBench(b *testing.B, dbURL string, n int) *Store {
	ctx := context.Background()
	s, err := Open(ctx, dbURL, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var have int
	if err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM resources").Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have == 0 {
		start := time.Now()
		total := loadSeed(b, s, n, 20)
		el := time.Since(start)
		b.Logf("%s: loaded %d resources in %s: %.0f resources/s with indexing", s.d.name, total, el.Round(time.Second),
			float64(total)/el.Seconds())
		analyze := "ANALYZE"
		if s.d.pg {
			analyze = "VACUUM ANALYZE"
		}
		if _, err := s.w.ExecContext(ctx, analyze); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// benchShapes are the searches measured: the main shapes of issue 4
// ("Speed"), on the synthetic payer data set.
func benchShapes() []struct{ name, typ, query string } {
	pat := seed.PatientID(seed.DefaultSeed, 7)
	return []struct{ name, typ, query string }{
		{"token", "Observation", "code=http://loinc.org|4548-4"},
		{"token-code-only", "Observation", "code=8867-4"},
		{"date-range", "Observation", "date=2024-03"},
		{"date-range-ge-lt", "Observation", "date=ge2024-03-01&date=lt2024-03-08"},
		{"reference", "Observation", "subject=Patient/" + pat},
		{"string-prefix", "Patient", "name=okaf"},
		{"chained", "Observation", "subject:Patient.name=okafor&code=http://loinc.org|4548-4"},
		{"chained-only", "Observation", "subject:Patient.name=okafor"},
		{"sorted", "Observation", "subject=Patient/" + pat + "&_sort=-date"},
		{"has", "Patient", "_has:Observation:subject:code=4548-4&name=okafor"},
	}
}

// BenchmarkSearch1M measures the first page (_count=20) of each shape.
func BenchmarkSearch1M(b *testing.B) {
	stores := benchStores(b)
	for _, name := range []string{"sqlite", "postgres"} {
		s := stores[name]
		if s == nil {
			continue
		}
		for _, sh := range benchShapes() {
			b.Run(name+"/"+sh.name, func(b *testing.B) {
				vals, _ := url.ParseQuery(sh.query)
				q, _, err := search.ParseQuery(sh.typ, vals, true)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				lat := make([]time.Duration, 0, b.N)
				matches := 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					page, err := s.Search(ctx, SearchSpec{Query: q, Count: 20})
					if err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
					matches = len(page.Matches)
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(matches), "matches")
			})
		}
	}
}
