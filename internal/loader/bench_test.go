package loader_test

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// benchData is the input of the ingest benchmarks: synthea-100 (real-world
// shape, 38,483 resources) when present, and the seed data set of 100
// patients (about 8,300 smaller resources) always.
func benchData(b *testing.B) map[string]string {
	sets := map[string]string{}
	dir := b.TempDir()
	if _, err := seed.WriteNDJSON(context.Background(), dir, seed.Options{Patients: 100, Seed: seed.DefaultSeed}, true); err != nil {
		b.Fatal(err)
	}
	sets["seed-100"] = dir
	if d := syntheaPath(); d != "" {
		sets["synthea-100"] = d
	}
	return sets
}

// BenchmarkToStore measures load --db: resources/s into a fresh database.
func BenchmarkToStore(b *testing.B) {
	for name, dir := range benchData(b) {
		for _, be := range testdb.Backends() {
			b.Run(name+"/"+be.Name, func(b *testing.B) {
				srcs := sources(b, dir)
				var n int64
				for b.Loop() {
					b.StopTimer()
					st := openStore(b, be.NewURL(b))
					b.StartTimer()
					res, err := loader.ToStore(context.Background(), st, srcs, loader.Options{})
					if err != nil {
						b.Fatal(err)
					}
					n += res.Resources
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
			})
		}
	}
}

// BenchmarkToServer measures load --server against an in-process fhirgate
// on SQLite (client and server share the machine's cores).
func BenchmarkToServer(b *testing.B) {
	for name, dir := range benchData(b) {
		b.Run(name, func(b *testing.B) {
			srcs := sources(b, dir)
			var n int64
			for b.Loop() {
				b.StopTimer()
				s := ts.Start(b, testdb.SQLiteURL(b))
				key := register(b, s, "loader", []string{"system/*.cruds"}, 300)
				src, err := client.NewTokenSource(client.Config{ClientID: "loader", Key: key, Scopes: []string{"system/*.cu"}, FHIRBaseURL: s.URL + "/fhir"})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := loader.ToServer(context.Background(), loader.Server{BaseURL: s.URL + "/fhir", HTTP: src.Client()}, srcs, loader.Options{})
				if err != nil {
					b.Fatal(err)
				}
				n += res.Resources
				b.StopTimer()
				s.Stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}
