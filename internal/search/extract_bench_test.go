package search

import "testing"

func benchExtract(b *testing.B, typ string) {
	bodies := loadSynthea(b, typ)
	x := NewExtractor()
	var size int
	for _, body := range bodies {
		size += len(body)
	}
	b.SetBytes(int64(size / len(bodies)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := x.Extract(typ, bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

func BenchmarkExtractObservation(b *testing.B)          { benchExtract(b, "Observation") }
func BenchmarkExtractExplanationOfBenefit(b *testing.B) { benchExtract(b, "ExplanationOfBenefit") }
func BenchmarkExtractPatient(b *testing.B)              { benchExtract(b, "Patient") }

// benchParallel runs one Extractor per goroutine, as the storage layer's
// writers would: resources/s here is the throughput of all cores together.
func benchParallel(b *testing.B, typ string) {
	bodies := loadSynthea(b, typ)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := NewExtractor()
		i := 0
		for pb.Next() {
			if _, err := x.Extract(typ, bodies[i%len(bodies)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

func BenchmarkExtractParallelObservation(b *testing.B) { benchParallel(b, "Observation") }
func BenchmarkExtractParallelExplanationOfBenefit(b *testing.B) {
	benchParallel(b, "ExplanationOfBenefit")
}

func BenchmarkParseQuery(b *testing.B) {
	vals := map[string][]string{"subject:Patient.name": {"peter"}, "date": {"ge2020-01-01"}, "code": {"http://loinc.org|8480-6,x"},
		"_sort": {"-date"}, "_count": {"50"}, "_include": {"Observation:patient"}}
	for i := 0; i < b.N; i++ {
		if _, _, err := ParseQuery("Observation", vals, true); err != nil {
			b.Fatal(err)
		}
	}
}
