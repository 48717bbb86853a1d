package loader

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sync/errgroup"
)

// discard is a sink that stores nothing: it measures reading and parsing.
type discard struct{ t *tally }

func (d *discard) add(_ context.Context, e entry) error {
	d.t.written([]entry{e})
	return nil
}

func (d *discard) finish(context.Context) error { return nil }

// BenchmarkReadParse measures the pipeline without a destination: reading,
// decompressing and validating synthea-100.
func BenchmarkReadParse(b *testing.B) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "synthea-100")
	if _, err := os.Stat(dir); err != nil {
		b.Skip("synthea-100 not found")
	}
	srcs, err := Files(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for b.Loop() {
		res, err := run(context.Background(), srcs, Options{}.withDefaults(DefaultStoreBatch),
			func(_ context.Context, _ *errgroup.Group, t *tally) sink { return &discard{t} })
		if err != nil {
			b.Fatal(err)
		}
		n += res.Resources
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}
