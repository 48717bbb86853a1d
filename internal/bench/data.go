package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/fhirgate/fhirgate/internal/seed"
)

// mrnSystem is the identifier system of the seed's medical record numbers,
// the target of the chained search.
const mrnSystem = "https://example.org/fhirgate/sid/mrn"

// samplesFile is written last into a data directory: its presence says the
// NDJSON files next to it are complete and may be reused.
const samplesFile = "bench-samples.json"

// Ref names one resource.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// dataset is a generated seed data set on disk, with the samples that the
// scenarios draw their requests from.
type dataset struct {
	Dir      string         `json:"-"`
	Seed     uint64         `json:"seed"`
	Patients int            `json:"patients"`
	Counts   map[string]int `json:"counts"`
	Total    int            `json:"total"`
	// Reads are resources picked uniformly (Groups left out: one Group
	// lists a whole plan's members and is no typical read).
	Reads []Ref `json:"reads"`
	// MRNs are medical record numbers of patients picked uniformly.
	MRNs []string `json:"mrns"`
	// Reused is set when the files came from an earlier run.
	Reused bool `json:"-"`
}

// patientsFor returns the number of patients whose seed data set has about
// resources resources: the seed says 50 to 100 resources per patient, so it
// starts from the average and corrects with the exact counts.
func patientsFor(resources int, seedVal uint64) (int, error) {
	if resources <= 0 {
		return 0, nil
	}
	p := max(1, resources/83)
	for range 3 {
		counts, err := seed.Counts(seed.Options{Patients: p, Seed: seedVal})
		if err != nil {
			return 0, err
		}
		total := sum(counts)
		if total == resources || total == 0 {
			break
		}
		next := max(1, int(float64(p)*float64(resources)/float64(total)+0.5))
		if next == p {
			break
		}
		p = min(next, seed.MaxPatients)
	}
	return p, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// prepareData generates the data set of patients and seed into dir as NDJSON
// (one file per type), keeping reservoir samples of up to nReads resources
// and nMRNs record numbers, drawn with a generator seeded from the data set
// seed so that runs request the same resources. A complete earlier
// generation in dir is reused.
func prepareData(ctx context.Context, dir string, patients int, seedVal uint64, nReads, nMRNs int) (*dataset, error) {
	if ds, err := loadSamples(dir); err == nil && ds.Patients == patients && ds.Seed == seedVal && len(ds.Reads) >= min(nReads, ds.Total) {
		ds.Dir, ds.Reused = dir, true
		return ds, nil
	}
	os.Remove(filepath.Join(dir, samplesFile))
	w, err := seed.NewDirWriter(dir, false)
	if err != nil {
		return nil, err
	}
	ds := &dataset{Dir: dir, Seed: seedVal, Patients: patients}
	rng := rand.New(rand.NewPCG(seedVal, 0x62656e6368)) // "bench"
	var seenReads, seenMRNs uint64
	emit := func(typ, id string, body []byte) error {
		if err := w.Write(typ, id, body); err != nil {
			return err
		}
		if typ != seed.TypeGroup {
			reservoir(rng, &ds.Reads, Ref{Type: typ, ID: id}, &seenReads, nReads)
		}
		if typ == seed.TypePatient {
			if mrn := patientMRN(body); mrn != "" {
				reservoir(rng, &ds.MRNs, mrn, &seenMRNs, nMRNs)
			}
		}
		return nil
	}
	if err := seed.Generate(ctx, seed.Options{Patients: patients, Seed: seedVal}, emit); err != nil {
		w.Abort()
		return nil, fmt.Errorf("bench: generate data: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("bench: write data: %w", err)
	}
	ds.Counts = w.Counts()
	ds.Total = sum(ds.Counts)
	b, err := json.Marshal(ds)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, samplesFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("bench: write samples: %w", err)
	}
	return ds, nil
}

// loadSamples reads the samples of a complete earlier generation.
func loadSamples(dir string) (*dataset, error) {
	b, err := os.ReadFile(filepath.Join(dir, samplesFile))
	if err != nil {
		return nil, err
	}
	var ds dataset
	if err := json.Unmarshal(b, &ds); err != nil {
		return nil, err
	}
	if ds.Total == 0 && ds.Patients > 0 {
		return nil, errors.New("bench: empty samples")
	}
	return &ds, nil
}

// reservoir keeps a uniform sample of k items of a stream (Vitter's
// algorithm R); seen counts the items offered so far.
func reservoir[T any](rng *rand.Rand, sample *[]T, item T, seen *uint64, k int) {
	n := *seen
	*seen = n + 1
	if k <= 0 {
		return
	}
	if len(*sample) < k {
		*sample = append(*sample, item)
		return
	}
	if j := rng.Uint64N(n + 1); j < uint64(k) {
		(*sample)[j] = item
	}
}

// patientMRN returns the medical record number of a seed Patient.
func patientMRN(body []byte) string {
	var p struct {
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	for _, id := range p.Identifier {
		if id.System == mrnSystem {
			return id.Value
		}
	}
	return ""
}
