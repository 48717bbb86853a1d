package fhirsearch_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}

// loadPatients writes the synthetic data set of n patients into the
// server's store.
func loadPatients(b *testing.B, s *ts.Server, n int) {
	ctx := context.Background()
	var batch []*resource.Resource
	flush := func() error {
		err := s.Store().Write(ctx, func(tx store.Tx) error {
			for _, r := range batch {
				if _, err := tx.Create(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	err := seed.Generate(ctx, seed.Options{Patients: n, Seed: seed.DefaultSeed}, func(_, _ string, body []byte) error {
		r, err := resource.Parse(body)
		if err != nil {
			return err
		}
		if batch = append(batch, r); len(batch) == 50 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSearchHTTP measures searches per second over real HTTP with 16
// concurrent clients: the first page (_count=20) of a token search, as
// root (HTTP Basic, cached), on the synthetic data set of 200 patients.
func BenchmarkSearchHTTP(b *testing.B) {
	for _, be := range testdb.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := ts.Start(b, be.NewURL(b))
			loadPatients(b, s, 200)
			url := s.URL + "/fhir/Observation?code=http://loinc.org|4548-4&_count=20"
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					req.SetBasicAuth("root", ts.RootSecret)
					resp, err := benchClient.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "searches/s")
		})
	}
}
