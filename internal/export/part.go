package export

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// partWriter writes one part (file) of an export as gzip-compressed NDJSON
// into the spool. The part is a series of gzip members, one per
// checkpoint: sync closes the member, flushes and fsyncs, and returns the
// durable size. A worker that resumes the part after a crash keeps exactly
// that many bytes and appends new members, so the file never holds a line
// twice or half a line. Every gzip reader (RFC 1952 §2.2, Go's in
// multistream mode, zcat) reads the members as one stream.
type partWriter struct {
	f     *os.File
	cw    countWriter
	bw    *bufio.Writer
	gz    *gzip.Writer
	inMem bool // a gzip member is open
	// count and raw are the resources and uncompressed bytes of the part,
	// durable or not.
	count, raw int64
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// newPartWriter creates path, keeping the first keep bytes of from (the
// durable bytes of the previous holder's spool file) when keep > 0. ok is
// false when from is missing or shorter than keep: the part must then
// start over.
func newPartWriter(gz *gzip.Writer, path, from string, keep int64) (w *partWriter, ok bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, false, err
	}
	w = &partWriter{f: f, gz: gz}
	w.cw.w = f
	w.bw = bufio.NewWriterSize(&w.cw, 256<<10)
	if keep > 0 {
		ok, err = w.copyFrom(from, keep)
		if err != nil || !ok {
			w.abort()
			return nil, ok, err
		}
	}
	return w, true, nil
}

func (w *partWriter) copyFrom(from string, keep int64) (bool, error) {
	src, err := os.Open(from)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer src.Close()
	n, err := io.CopyN(&w.cw, src, keep)
	if errors.Is(err, io.EOF) || n < keep {
		return false, nil
	}
	return err == nil, err
}

// write appends one resource and a newline.
func (w *partWriter) write(line []byte) error {
	if !w.inMem {
		w.gz.Reset(w.bw)
		w.inMem = true
	}
	if _, err := w.gz.Write(line); err != nil {
		return err
	}
	if _, err := w.gz.Write(newline); err != nil {
		return err
	}
	w.count++
	w.raw += int64(len(line)) + 1
	return nil
}

var newline = []byte{'\n'}

// sync ends the current gzip member and makes everything written durable,
// returning the durable size.
func (w *partWriter) sync() (int64, error) {
	if w.inMem {
		if err := w.gz.Close(); err != nil {
			return 0, err
		}
		w.inMem = false
	}
	if err := w.bw.Flush(); err != nil {
		return 0, err
	}
	if err := w.f.Sync(); err != nil {
		return 0, fmt.Errorf("sync spool: %w", err)
	}
	return w.cw.n, nil
}

// close syncs and closes the file, returning its size.
func (w *partWriter) close() (int64, error) {
	n, err := w.sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// abort closes the file without syncing (the caller gives up the part).
func (w *partWriter) abort() {
	w.f.Close()
}
