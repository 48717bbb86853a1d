package seed

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/fhirgate/fhirgate/fhir"
)

// DirWriter writes resources as NDJSON into a directory, one file per
// resource type: DIR/<Type>.ndjson, or DIR/<Type>.ndjson.gz when gzipped.
// Files are written under temporary names and renamed by Close, so a failed
// or cancelled run never leaves a half-written file under a final name.
// A DirWriter is not safe for concurrent use.
type DirWriter struct {
	dir    string
	gzip   bool
	files  map[string]*typeFile
	counts map[string]int
	done   bool
}

type typeFile struct {
	f     *os.File
	zw    *gzip.Writer
	bw    *bufio.Writer
	final string
}

// NewDirWriter prepares dir (creating it if needed) for NDJSON files,
// gzip-compressed when gz is set.
func NewDirWriter(dir string, gz bool) (*DirWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("seed: create output directory: %w", err)
	}
	return &DirWriter{dir: dir, gzip: gz, files: map[string]*typeFile{}, counts: map[string]int{}}, nil
}

// Write appends one resource as a line of its type's file. Its signature is
// an EmitFunc's. The resource type must be a FHIR R4 type: it names a file.
func (d *DirWriter) Write(resourceType, id string, resource []byte) error {
	tf, ok := d.files[resourceType]
	if !ok {
		var err error
		if tf, err = d.open(resourceType); err != nil {
			return err
		}
	}
	if _, err := tf.bw.Write(resource); err != nil {
		return fmt.Errorf("seed: write %s: %w", tf.final, err)
	}
	if err := tf.bw.WriteByte('\n'); err != nil {
		return fmt.Errorf("seed: write %s: %w", tf.final, err)
	}
	d.counts[resourceType]++
	return nil
}

func (d *DirWriter) open(resourceType string) (*typeFile, error) {
	if d.done {
		return nil, errors.New("seed: write after Close")
	}
	if !fhir.IsResourceType(resourceType) {
		return nil, fmt.Errorf("seed: %q is not a FHIR R4 resource type", resourceType)
	}
	name := resourceType + ".ndjson"
	if d.gzip {
		name += ".gz"
	}
	f, err := os.CreateTemp(d.dir, "."+name+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("seed: create %s: %w", name, err)
	}
	// CreateTemp makes the file private (0600); the published file is an
	// ordinary data file.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("seed: create %s: %w", name, err)
	}
	tf := &typeFile{f: f, final: filepath.Join(d.dir, name)}
	if d.gzip {
		// BestSpeed: NDJSON of FHIR compresses about 10:1 even at level 1,
		// and the default level would make compression the bottleneck.
		tf.zw, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
		tf.bw = bufio.NewWriterSize(tf.zw, 256<<10)
	} else {
		tf.bw = bufio.NewWriterSize(f, 256<<10)
	}
	d.files[resourceType] = tf
	return tf, nil
}

// Counts returns the number of resources written per type.
func (d *DirWriter) Counts() map[string]int {
	out := make(map[string]int, len(d.counts))
	for t, n := range d.counts {
		out[t] = n
	}
	return out
}

// Files returns the final paths of the files written, sorted.
func (d *DirWriter) Files() []string {
	var out []string
	for _, tf := range d.files {
		out = append(out, tf.final)
	}
	sort.Strings(out)
	return out
}

// Close flushes every file and gives it its final name, replacing a file of
// that name. On error the temporary files are removed.
func (d *DirWriter) Close() error {
	if d.done {
		return nil
	}
	d.done = true
	var errs []error
	for _, tf := range d.files {
		errs = append(errs, tf.finish())
	}
	if err := errors.Join(errs...); err != nil {
		d.removeTemps()
		return err
	}
	for _, tf := range d.files {
		if err := os.Rename(tf.f.Name(), tf.final); err != nil {
			d.removeTemps()
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// Abort removes the temporary files without publishing them.
func (d *DirWriter) Abort() {
	if d.done {
		return
	}
	d.done = true
	for _, tf := range d.files {
		tf.f.Close()
	}
	d.removeTemps()
}

func (d *DirWriter) removeTemps() {
	for _, tf := range d.files {
		os.Remove(tf.f.Name())
	}
}

func (tf *typeFile) finish() error {
	err := tf.bw.Flush()
	if tf.zw != nil {
		err = errors.Join(err, tf.zw.Close())
	}
	err = errors.Join(err, tf.f.Close())
	if err != nil {
		return fmt.Errorf("seed: write %s: %w", tf.final, err)
	}
	return nil
}

// WriteNDJSON generates the data set of opts into dir, one NDJSON file per
// type (gzip-compressed when gz is set), and returns the count per type.
func WriteNDJSON(ctx context.Context, dir string, opts Options, gz bool) (map[string]int, error) {
	d, err := NewDirWriter(dir, gz)
	if err != nil {
		return nil, err
	}
	if err := Generate(ctx, opts, d.Write); err != nil {
		d.Abort()
		return nil, err
	}
	if err := d.Close(); err != nil {
		return nil, err
	}
	return d.Counts(), nil
}
