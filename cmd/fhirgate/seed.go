package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/internal/seed"
)

func init() { register(newSeedCmd) }

// progressMinPatients is the smallest data set that gets a progress bar:
// smaller ones finish before a bar would say anything.
const progressMinPatients = 2000

// newSeedCmd builds `fhirgate seed`: the deterministic synthetic payer data
// set written as NDJSON, one file per resource type.
func newSeedCmd() *cobra.Command {
	var (
		patients int
		out      string
		seedVal  uint64
		gz       bool
	)
	cmd := &cobra.Command{
		Use:   "seed --patients N --out DIR",
		Short: "Write a deterministic synthetic payer data set as NDJSON, one file per type",
		Long: `Write a deterministic synthetic FHIR R4 payer data set into DIR as NDJSON,
one file per resource type (DIR/<Type>.ndjson, or .ndjson.gz with --gzip):
payer and provider Organizations, Practitioners, and per patient a Patient,
Coverage, Encounters, Claims, ExplanationOfBenefits, Conditions,
Observations (vital signs and labs, HbA1c among them), Procedures,
MedicationRequests, Immunizations and AllergyIntolerances; then one Group of
members per payer plan. Each patient brings 50 to 100 resources.

The same --patients and --seed always give byte-identical files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("seed: --out is required: name the directory to write the NDJSON files to, e.g. --out ./seed-data")
			}
			if patients < 0 || patients > seed.MaxPatients {
				return fmt.Errorf("seed: --patients must be between 0 and %d, got %d; try --patients 100", seed.MaxPatients, patients)
			}
			return runSeed(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), seed.Options{Patients: patients, Seed: seedVal}, out, gz)
		},
	}
	f := cmd.Flags()
	f.IntVar(&patients, "patients", 100, "number of patients (each with 50 to 100 resources)")
	f.StringVar(&out, "out", "", "directory to write the NDJSON files to (created if missing)")
	f.Uint64Var(&seedVal, "seed", seed.DefaultSeed, "seed of the data set: the same seed gives the same data")
	f.BoolVar(&gz, "gzip", false, "write gzip-compressed files (<Type>.ndjson.gz)")
	return cmd
}

func runSeed(ctx context.Context, stdout, stderr io.Writer, opts seed.Options, out string, gz bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	start := time.Now()
	d, err := seed.NewDirWriter(out, gz)
	if err != nil {
		return fmt.Errorf("%w; check that --out %s is a directory you can write to", err, out)
	}
	emit := d.Write
	bar := progressBar(stderr, opts.Patients)
	if bar != nil {
		emit = func(typ, id string, r []byte) error {
			if typ == seed.TypePatient {
				_ = bar.Add(1)
			}
			return d.Write(typ, id, r)
		}
	}
	err = seed.Generate(ctx, opts, emit)
	if bar != nil {
		_ = bar.Exit()
	}
	if err != nil {
		d.Abort()
		if ctx.Err() != nil {
			return fmt.Errorf("seed: interrupted; no file was written to %s", out)
		}
		return fmt.Errorf("%w; no file was written: check free space in %s and retry", err, out)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("%w; check free space in %s and retry", err, out)
	}
	fmt.Fprintln(stdout, summary(d.Counts(), opts, out, time.Since(start)))
	return nil
}

// progressBar returns a bar on stderr when it is a terminal and the data set
// is large enough to take a while; nil otherwise.
func progressBar(stderr io.Writer, patients int) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || patients < progressMinPatients {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return progressbar.NewOptions(patients,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("seed"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("patients"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// summary is the one-line report: totals, speed, then the count per type.
func summary(counts map[string]int, opts seed.Options, out string, took time.Duration) string {
	types := make([]string, 0, len(counts))
	total := 0
	for t, n := range counts {
		types = append(types, t)
		total += n
	}
	sort.Strings(types)
	var b strings.Builder
	secs := max(took.Seconds(), 1e-9)
	fmt.Fprintf(&b, "seed: wrote %d resources for %d patients (seed %d) to %s in %.2fs, %.0f resources/s:",
		total, opts.Patients, opts.Seed, out, took.Seconds(), float64(total)/secs)
	for _, t := range types {
		fmt.Fprintf(&b, " %s=%d", t, counts[t])
	}
	return b.String()
}
