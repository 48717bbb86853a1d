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
