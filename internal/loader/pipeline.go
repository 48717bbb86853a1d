package loader

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/fhirgate/fhirgate/internal/resource"
)

// entry is a valid resource on its way to the destination, with where it
// came from.
type entry struct {
	file   int
	line   int64
	offset int64 // input offset of its chunk, for progress
	raw    []byte
	res    *resource.Resource
}

// sink is a destination. add takes the valid resources in input order, one
// goroutine calling; finish writes what is left. Both report what they wrote
// to the tally. A sink may run work on the group; its errors end the load.
type sink interface {
	add(ctx context.Context, e entry) error
	finish(ctx context.Context) error
}

// newSinkFunc builds the sink of one load.
type newSinkFunc func(ctx context.Context, g *errgroup.Group, t *tally) sink

// run loads srcs into the sink that newSink builds: the reader, the parse
// workers and the in-order consumer run concurrently, connected by small
// channels, so memory stays bounded by a few chunks per worker.
func run(ctx context.Context, srcs []Source, o Options, newSink newSinkFunc) (*Result, error) {
	t := newTally(srcs, o)
	g, gctx := errgroup.WithContext(ctx)
	raw := make(chan *chunk, o.Workers)
	parsedc := make(chan *chunk, 2*o.Workers)
	rd := &reader{srcs: srcs, maxLine: o.MaxLineBytes, started: t.started}
	g.Go(func() error {
		defer close(raw)
		return rd.run(gctx, raw)
	})
	var workers sync.WaitGroup
	for range o.Workers {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return parseWorker(gctx, raw, parsedc, o.prepare)
		})
	}
	go func() { workers.Wait(); close(parsedc) }()
	s := newSink(gctx, g, t)
	g.Go(func() error { return consume(gctx, parsedc, t, s, o.SkipInvalid) })
	err := g.Wait()
	return t.result(), err
}

func parseWorker(ctx context.Context, in <-chan *chunk, out chan<- *chunk, prepare func(*resource.Resource) error) error {
	for c := range in {
		parseChunk(c, prepare)
		select {
		case out <- c:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// consume puts the parsed chunks back in input order and feeds the sink.
// Chunks that arrive early wait in pending; there are never more of them
// than chunks in flight between the reader and here.
func consume(ctx context.Context, in <-chan *chunk, t *tally, s sink, skipInvalid bool) error {
	pending := map[int64]*chunk{}
	var next int64
	valid := make([]int64, len(t.files)) // valid lines handed to the sink, per file
	for c := range in {
		pending[c.seq] = c
		for {
			c, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err := feed(ctx, c, t, s, skipInvalid, valid); err != nil {
				var le *LineError
				if errors.As(err, &le) {
					// Everything before the invalid line is written, so
					// that the count the error reports is exact.
					if ferr := s.finish(ctx); ferr != nil {
						return ferr
					}
				}
				return err
			}
		}
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("loader: %d chunks out of order at the end", len(pending))
	}
	return s.finish(ctx)
}

func feed(ctx context.Context, c *chunk, t *tally, s sink, skipInvalid bool, valid []int64) error {
	for i := range c.recs {
		r := &c.recs[i]
		if r.err != nil {
			le := &LineError{File: t.files[c.file].Name, Line: r.line, Err: r.err}
			if !skipInvalid {
				return le
			}
			t.invalid(c.file, le)
			continue
		}
		valid[c.file]++
		if err := s.add(ctx, entry{file: c.file, line: r.line, offset: c.offset, raw: r.raw, res: r.res}); err != nil {
			return err
		}
	}
	if c.eof {
		t.eof(c.file, c.bytes, valid[c.file])
	}
	return nil
}
