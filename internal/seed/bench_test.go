package seed

import (
	"context"
	"testing"
)

// BenchmarkGenerate measures generation alone (emit discards), one core.
func BenchmarkGenerate(b *testing.B) {
	opts := Options{Patients: 1000, Seed: 1}
	var resources, bytes int64
	b.ReportAllocs()
	for b.Loop() {
		err := Generate(context.Background(), opts, func(_, _ string, r []byte) error {
			resources++
			bytes += int64(len(r)) + 1
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(bytes)/float64(resources), "bytes/resource")
	b.SetBytes(bytes / int64(b.N))
}

// BenchmarkWriteNDJSON measures generation into NDJSON files on disk.
func BenchmarkWriteNDJSON(b *testing.B) {
	for _, tc := range []struct {
		name string
		gz   bool
	}{{"plain", false}, {"gzip", true}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			opts := Options{Patients: 1000, Seed: 1}
			var resources int
			for b.Loop() {
				counts, err := WriteNDJSON(context.Background(), dir, opts, tc.gz)
				if err != nil {
					b.Fatal(err)
				}
				for _, n := range counts {
					resources += n
				}
			}
			b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

// BenchmarkCounts measures Counts, which draws outlines only.
func BenchmarkCounts(b *testing.B) {
	for b.Loop() {
		if _, err := Counts(Options{Patients: 10000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
