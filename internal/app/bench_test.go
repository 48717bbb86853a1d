package app_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

const benchObservation = `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c/Hemoglobin.total in Blood"}],"text":"Hemoglobin A1c"},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2014-05-11T12:39:55+04:00","valueQuantity":{"value":5.6,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`

// benchClient is an HTTP client with enough idle connections for parallel
// benchmarks (the default keeps 2 per host and churns the rest).
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

func benchDo(b *testing.B, method, url, body string, want int) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth("root", ts.RootSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
}

// BenchmarkCreate measures POST /fhir/Observation over real HTTP with
// parallel clients, on each backend.
func BenchmarkCreate(b *testing.B) {
	for _, be := range testdb.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := ts.Start(b, be.NewURL(b))
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchDo(b, "POST", s.URL+"/fhir/Observation", benchObservation, 201)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkRead measures GET /fhir/Observation/{id} over real HTTP, with
// parallel clients reading 1000 distinct resources, on each backend.
func BenchmarkRead(b *testing.B) {
	for _, be := range testdb.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := ts.Start(b, be.NewURL(b))
			const n = 1000
			for i := 0; i < n; i++ {
				benchDo(b, "PUT", fmt.Sprintf("%s/fhir/Observation/o%d", s.URL, i),
					strings.Replace(benchObservation, `"status"`, fmt.Sprintf(`"id":"o%d","status"`, i), 1), 201)
			}
			var next atomic.Int64
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % n
					benchDo(b, "GET", fmt.Sprintf("%s/fhir/Observation/o%d", s.URL, i), "", 200)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}

// benchParallelism is goroutines per GOMAXPROCS for the HTTP benchmarks:
// 32 concurrent clients on 2 cores, the concurrency a busy server sees.
const benchParallelism = 16
