package loader

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is one NDJSON input.
type Source struct {
	// Name identifies the input in progress reports and errors, usually
	// its path.
	Name string
	// Size is the number of bytes Open's reader yields (compressed bytes
	// for a gzip file), or 0 when unknown. Progress reports use it.
	Size int64
	// Open opens the input. Gzip-compressed content is recognised by its
	// magic number and decompressed, whatever the name.
	Open func() (io.ReadCloser, error)
}

// FileSource returns the Source of the file at path.
func FileSource(path string) (Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Source{}, err
	}
	if fi.IsDir() {
		return Source{}, fmt.Errorf("%s is a directory", path)
	}
	return Source{Name: path, Size: fi.Size(), Open: func() (io.ReadCloser, error) { return os.Open(path) }}, nil
}

// Files returns the sources of paths in order. A directory stands for the
// NDJSON files directly inside it (*.ndjson, *.ndjson.gz, *.jsonl and
// their .gz forms), sorted by name; a directory without any is an error,
// since it is most likely the wrong one.
func Files(paths ...string) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			s, err := FileSource(p)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			continue
		}
		srcs, err := dirSources(p)
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	return out, nil
}

func dirSources(dir string) ([]Source, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && isNDJSONName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s holds no .ndjson or .ndjson.gz file: %w", dir, fs.ErrNotExist)
	}
	sort.Strings(names)
	out := make([]Source, 0, len(names))
	for _, n := range names {
		s, err := FileSource(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func isNDJSONName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	return strings.HasSuffix(name, ".ndjson") || strings.HasSuffix(name, ".jsonl")
}

// countingReader counts the bytes read through it: the position in the
// input as stored, before decompression, for progress reports.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gzipMagic starts every gzip member (RFC 1952 §2.3.1).
var gzipMagic = []byte{0x1f, 0x8b}

// openContent wraps raw so that it yields the NDJSON text: decompressed
// when it starts with the gzip magic number.
func openContent(raw io.Reader) (io.Reader, func() error, error) {
	br := bufio.NewReaderSize(raw, 64<<10)
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	if !bytes.Equal(head, gzipMagic) {
		return br, func() error { return nil }, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("gzip: %w", err)
	}
	return zr, zr.Close, nil
}
