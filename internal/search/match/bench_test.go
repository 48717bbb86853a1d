package match

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/search"
)

// benchBodies returns Observations to match: synthea's when present (the
// real shape), else the hand-written ones.
func benchBodies(b *testing.B) [][]byte {
	var out [][]byte
	if _, err := os.Stat(syntheaDir); err == nil {
		t := &testing.T{}
		for _, s := range readNDJSON(t, filepath.Join(syntheaDir, "Observation.ndjson.gz")) {
			out = append(out, []byte(s))
		}
	}
	if len(out) == 0 {
		for _, s := range tricky {
			if strings.Contains(s, `"resourceType":"Observation"`) {
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

// BenchmarkMatch measures Match on Observations, one resource per
// iteration; matches/s is the rate of single-resource decisions.
func BenchmarkMatch(b *testing.B) {
	bodies := benchBodies(b)
	cases := []struct{ name, q string }{
		{"id", "_id=00040e93-f2e7-4daf-aaea-7c6c10ebf832"},
		{"token", "category=laboratory"},
		{"scope-like", "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
		{"typeFilter", "code=http://loinc.org|2339-0,http://loinc.org|38483-4&date=ge2015&value-quantity=gt0.5"},
		{"composite", "combo-code-value-quantity=http://loinc.org|8480-6$gt120"},
	}
	for _, c := range cases {
		vals, _ := url.ParseQuery(c.q)
		m, err := Compile("Observation", []url.Values{vals})
		if err != nil {
			b.Fatal(err)
		}
		run := func(b *testing.B, parallel bool) {
			b.ReportAllocs()
			matched := 0
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if _, err := m.Match(bodies[i%len(bodies)]); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			} else {
				for i := 0; b.Loop(); i++ {
					ok, err := m.Match(bodies[i%len(bodies)])
					if err != nil {
						b.Fatal(err)
					}
					if ok {
						matched++
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
		}
		b.Run(c.name, func(b *testing.B) { run(b, false) })
		b.Run(c.name+"/parallel", func(b *testing.B) { run(b, true) })
	}
}

// BenchmarkExtract is the floor Match stands on: decoding a resource and
// extracting all its index rows.
func BenchmarkExtract(b *testing.B) {
	bodies := benchBodies(b)
	x := search.NewExtractor()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := x.Extract("Observation", bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkCompile measures compiling a typical _typeFilter.
func BenchmarkCompile(b *testing.B) {
	vals, _ := url.ParseQuery("code=http://loinc.org|2339-0,http://loinc.org|38483-4&date=ge2015&value-quantity=gt0.5")
	qs := []url.Values{vals, {"category": {"vital-signs"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile("Observation", qs); err != nil {
			b.Fatal(err)
		}
	}
}
