package loader

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fhirgate/fhirgate/internal/resource"
)

// Chunk bounds: a chunk is the unit of parallel parsing. Small enough that
// a few in flight per worker stay within a few megabytes, large enough that
// channel hand-offs cost nothing next to parsing.
const (
	chunkLines = 256
	chunkBytes = 1 << 20
	readBuffer = 256 << 10
)

// chunk is a run of consecutive lines of one input, and after parsing the
// resources they hold.
type chunk struct {
	seq  int64
	file int
	// offset is how much of the input (as stored) had been read when the
	// chunk was cut.
	offset int64
	recs   []rec
	arena  []byte // holds the lines of recs
	// eof marks the last chunk of its input (it may hold no lines); bytes
	// is then the size of the whole input as read.
	eof   bool
	bytes int64
}

// rec is one non-blank line.
type rec struct {
	line int64
	raw  []byte
	// set by parsing: res, or err for an invalid line
	res *resource.Resource
	err error
}

// reader cuts the inputs into chunks, in order.
type reader struct {
	srcs    []Source
	maxLine int
	started func(file int)
}

// run reads every input in turn and sends its chunks to out.
func (r *reader) run(ctx context.Context, out chan<- *chunk) error {
	var seq int64
	for i, src := range r.srcs {
		if err := r.readOne(ctx, i, src, out, &seq); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) readOne(ctx context.Context, file int, src Source, out chan<- *chunk, seq *int64) error {
	if r.started != nil {
		r.started(file)
	}
	f, err := src.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	counted := &countingReader{r: f}
	content, closeContent, err := openContent(counted)
	if err != nil {
		return fmt.Errorf("%s: %w", src.Name, err)
	}
	defer closeContent()
	lr := &lineReader{br: bufio.NewReaderSize(content, readBuffer), max: r.maxLine}
	c := r.newChunk(seq, file)
	send := func(c *chunk) error {
		c.offset = counted.n
		select {
		case out <- c:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	for {
		line, err := lr.next()
		var tooLong *tooLongError
		switch {
		case errors.Is(err, io.EOF):
			c.eof, c.bytes = true, counted.n
			return send(c)
		case errors.As(err, &tooLong):
			// The parse stage treats it as any invalid line: stop, or skip
			// it under SkipInvalid.
		case err != nil:
			return fmt.Errorf("%s: after line %d: %w", src.Name, lr.no, err)
		case len(line) == 0:
			continue // blank lines (a trailing newline, say) hold no resource
		}
		if len(c.recs) == chunkLines || len(c.arena)+len(line) > cap(c.arena) && len(c.recs) > 0 {
			if err := send(c); err != nil {
				return err
			}
			c = r.newChunk(seq, file)
		}
		c.add(lr.no, line, err)
	}
}

func (r *reader) newChunk(seq *int64, file int) *chunk {
	c := &chunk{seq: *seq, file: file, recs: make([]rec, 0, 64), arena: make([]byte, 0, chunkBytes)}
	*seq++
	return c
}

// add copies line into the chunk: into its arena when it fits, so that a
// chunk costs two allocations however many lines it holds.
func (c *chunk) add(no int64, line []byte, err error) {
	var raw []byte
	if len(c.arena)+len(line) <= cap(c.arena) {
		start := len(c.arena)
		c.arena = append(c.arena, line...)
		raw = c.arena[start:len(c.arena):len(c.arena)]
	} else {
		raw = bytes.Clone(line)
	}
	c.recs = append(c.recs, rec{line: no, raw: raw, err: err})
}

// lineReader returns the lines of an input one by one, without the line
// end and surrounding white space, and without a leading UTF-8 byte order
// mark. A line is valid until the next call.
type lineReader struct {
	br  *bufio.Reader
	max int
	no  int64 // number of the line last returned
}

var bom = []byte{0xef, 0xbb, 0xbf}

// tooLongError is a line over the limit; the reader has skipped it.
type tooLongError struct{ max int }

func (e *tooLongError) Error() string { return fmt.Sprintf("the line is longer than %d bytes", e.max) }

func (l *lineReader) next() ([]byte, error) {
	var long []byte
	skipping := false
	for {
		frag, err := l.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping && len(long)+len(frag) > l.max {
				skipping, long = true, nil
			}
			if !skipping {
				long = append(long, frag...)
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(frag) == 0 && len(long) == 0 && !skipping && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		l.no++
		line := frag
		if long != nil {
			line = append(long, frag...)
		}
		if skipping || len(bytes.TrimSpace(line)) > l.max {
			return nil, &tooLongError{l.max}
		}
		if l.no == 1 {
			line = bytes.TrimPrefix(line, bom)
		}
		return bytes.TrimSpace(line), nil
	}
}
