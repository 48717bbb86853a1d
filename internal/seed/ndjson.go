package seed

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

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

// chunkSize is the size of the buffer each file fills before writing (or
// compressing) it.
const chunkSize = 256 << 10

type typeFile struct {
	f     *os.File
	final string
	buf   []byte
	gz    *compressor // nil for plain NDJSON
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
	tf.buf = append(tf.buf, resource...)
	tf.buf = append(tf.buf, '\n')
	d.counts[resourceType]++
	if len(tf.buf) < chunkSize {
		return nil
	}
	return tf.flush()
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
	tf := &typeFile{f: f, final: filepath.Join(d.dir, name), buf: make([]byte, 0, chunkSize+64<<10)}
	if d.gzip {
		tf.gz = startCompressor(f)
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
		if tf.gz != nil {
			tf.gz.close()
		}
		tf.f.Close()
	}
	d.removeTemps()
}

func (d *DirWriter) removeTemps() {
	for _, tf := range d.files {
		os.Remove(tf.f.Name())
	}
}

// flush writes the buffered lines, or hands them to the compressor.
func (tf *typeFile) flush() error {
	var err error
	if tf.gz == nil {
		_, err = tf.f.Write(tf.buf)
		tf.buf = tf.buf[:0]
	} else {
		tf.buf, err = tf.gz.swap(tf.buf)
	}
	if err != nil {
		return fmt.Errorf("seed: write %s: %w", tf.final, err)
	}
	return nil
}

func (tf *typeFile) finish() error {
	err := tf.flush()
	if tf.gz != nil {
		err = errors.Join(err, tf.gz.close())
	}
	err = errors.Join(err, tf.f.Close())
	if err != nil {
		return fmt.Errorf("seed: write %s: %w", tf.final, err)
	}
	return nil
}

// compressor gzips a file's chunks on its own goroutine, so that with --gzip
// compression runs on the second core while the generator keeps the first:
// gzip alone is slower than the generator. Three buffers circulate per file
// (one filling, one queued, one compressing), which bounds memory.
type compressor struct {
	chunks chan []byte
	free   chan []byte
	done   chan error
	err    atomic.Pointer[error]
}

func startCompressor(f *os.File) *compressor {
	c := &compressor{chunks: make(chan []byte, 1), free: make(chan []byte, 3), done: make(chan error, 1)}
	for range 2 {
		c.free <- make([]byte, 0, chunkSize+64<<10)
	}
	// BestSpeed: NDJSON of FHIR compresses about 12:1 even at level 1,
	// and higher levels cost several times the CPU.
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	go func() {
		var err error
		for chunk := range c.chunks {
			if err == nil {
				if _, err = zw.Write(chunk); err != nil {
					c.err.Store(&err)
				}
			}
			c.free <- chunk[:0]
		}
		c.done <- errors.Join(err, zw.Close())
	}()
	return c
}

// swap queues a full buffer and returns an empty one, or the error that
// stopped the compressor.
func (c *compressor) swap(full []byte) ([]byte, error) {
	if e := c.err.Load(); e != nil {
		return full[:0], *e
	}
	c.chunks <- full
	return <-c.free, nil
}

// close waits for the queued chunks and finishes the gzip stream.
func (c *compressor) close() error {
	close(c.chunks)
	return <-c.done
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
