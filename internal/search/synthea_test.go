package search

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// syntheaDir is the synthetic data set beside the repository (never in it).
func syntheaDir() string {
	if d := os.Getenv("FHIRGATE_SYNTHEA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "data", "synthea-100")
}

// loadSynthea returns the resources of one type, one JSON document each,
// or skips the test when the data set is absent.
func loadSynthea(tb testing.TB, resourceType string) [][]byte {
	tb.Helper()
	f, err := os.Open(filepath.Join(syntheaDir(), resourceType+".ndjson.gz"))
	if os.IsNotExist(err) {
		tb.Skipf("synthea-100 not found at %s", syntheaDir())
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 64<<20)
	var out [][]byte
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// syntheaTypes are the resource types of synthea-100.
var syntheaTypes = []string{"AllergyIntolerance", "CarePlan", "CareTeam", "Claim", "Condition", "Device",
	"DiagnosticReport", "DocumentReference", "Encounter", "ExplanationOfBenefit", "Group", "ImagingStudy",
	"Immunization", "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner", "Procedure"}
