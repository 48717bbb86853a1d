package sqlstore

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// loadSeed writes the synthetic data set of n patients through the store in
// transactions of batch resources (as `fhirgate load --db` does) and returns
// how many resources it wrote.
func loadSeed(tb testing.TB, s *Store, n, batch int) int {
	tb.Helper()
	ctx := context.Background()
	var pending []*resource.Resource
	total := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := s.Write(ctx, func(tx store.Tx) error {
			for _, r := range pending {
				if _, err := tx.Create(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		total += len(pending)
		pending = pending[:0]
		return err
	}
	err := seed.Generate(ctx, seed.Options{Patients: n, Seed: seed.DefaultSeed}, func(typ, id string, body []byte) error {
		r, err := resource.Parse(body)
		if err != nil {
			return err
		}
		pending = append(pending, r)
		if len(pending) >= batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return total
}

// BenchmarkIngest measures loading with indexing: resources/s over the
// synthetic payer data set, 100 resources per transaction.
func BenchmarkIngest(b *testing.B) {
	for _, be := range testdb.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := openTest(b, be.NewURL)
			b.ResetTimer()
			cpu0 := cpuTime()
			total := 0
			for i := 0; i < b.N; i++ {
				total += loadSeedRange(b, s, i)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "resources/s")
			// Per CPU second of this process (generation, parsing, extraction
			// and the SQLite engine; PostgreSQL's own work is not counted):
			// steadier than wall time on a shared machine.
			b.ReportMetric(float64(total)/(cpuTime()-cpu0).Seconds(), "resources/cpu-s")
		})
	}
}

// loadSeedRange loads 50 patients under seed i+100, so that repeated
// benchmark rounds never collide on ids.
func loadSeedRange(tb testing.TB, s *Store, i int) int {
	ctx := context.Background()
	var pending []*resource.Resource
	err := seed.Generate(ctx, seed.Options{Patients: 50, Seed: uint64(100 + i)}, func(typ, id string, body []byte) error {
		r, err := resource.Parse(body)
		if err == nil {
			pending = append(pending, r)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	for len(pending) > 0 {
		n := min(100, len(pending))
		batch := pending[:n]
		pending = pending[n:]
		err := s.Write(ctx, func(tx store.Tx) error {
			for _, r := range batch {
				if _, err := tx.Create(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return 0 + countSeed(50)
}

// cpuTime is the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func countSeed(n int) int {
	c, _ := seed.Counts(seed.Options{Patients: n})
	t := 0
	for _, v := range c {
		t += v
	}
	return t
}
