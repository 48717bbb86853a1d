package loader

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/store"
)

// ToStore loads the NDJSON of srcs straight into st, Options.BatchSize
// resources per transaction and Options.Parallel transactions at once, each
// resource stored under its own id as an update (creating it when new).
// When an id appears twice the later line wins. On error the Result counts
// what was committed before it; loading the same files again is safe.
func ToStore(ctx context.Context, st store.ResourceStore, srcs []Source, opts Options) (*Result, error) {
	o := opts.withDefaults(DefaultStoreBatch)
	if p, ok := st.(indexPreparer); ok {
		o.prepare = p.PrepareIndex
	}
	return run(ctx, srcs, o, func(_ context.Context, g *errgroup.Group, t *tally) sink {
		return newStoreSink(g, t, st, o)
	})
}

// indexPreparer is a store that can do part of a write ahead of it
// (sqlstore extracts search index rows).
type indexPreparer interface {
	PrepareIndex(r *resource.Resource) error
}

// storeSink writes batches in transactions. Several in flight let the
// SQLite store commit them together, and PostgreSQL write them at once.
type storeSink struct {
	*batcher
	st store.ResourceStore
	t  *tally
}

func newStoreSink(g *errgroup.Group, t *tally, st store.ResourceStore, o Options) *storeSink {
	s := &storeSink{batcher: newBatcher(g, o.BatchSize, o.Parallel), st: st, t: t}
	s.newBatch = func() *batch {
		return &batch{entries: make([]entry, 0, o.BatchSize), keys: newKeys(o.BatchSize), done: make(chan struct{})}
	}
	s.put = func(b *batch, _ string, e entry) {
		e.raw = nil // the store takes the parsed resource
		b.entries = append(b.entries, e)
	}
	s.deliver = s.write
	return s
}

func (s *storeSink) write(ctx context.Context, b *batch) error {
	rs := make([]*resource.Resource, len(b.entries))
	for i, e := range b.entries {
		rs[i] = e.res
	}
	if i, err := writeBatch(ctx, s.st, rs); err != nil {
		if i >= 0 {
			// A store failure is no fault of the line, so it is not a
			// LineError (SkipInvalid does not skip it); the position
			// helps find out what the store disliked.
			e := b.entries[i]
			return fmt.Errorf("%s:%d: %w", s.t.files[e.file].Name, e.line, err)
		}
		return err
	}
	s.t.written(b.entries)
	return nil
}

// writeBatch stores rs in one transaction, each as an update of its
// Type/id. On failure it returns the index of the resource whose write
// failed, or -1 when the commit did.
func writeBatch(ctx context.Context, st store.ResourceStore, rs []*resource.Resource) (int, error) {
	failed := -1
	err := st.Write(ctx, func(tx store.Tx) error {
		failed = -1
		for i, r := range rs {
			if _, _, err := tx.Update(ctx, r, 0); err != nil {
				failed = i
				return fmt.Errorf("store %s/%s: %w", r.Type, r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return failed, err
	}
	return -1, nil
}

// StoreWriter writes resources into a store in batched transactions, in the
// order they are added, each under its own id (update as create). It is
// for callers that produce resources rather than read files, such as the
// demo data set. A StoreWriter is not safe for concurrent use.
type StoreWriter struct {
	st      store.ResourceStore
	size    int
	batch   []*resource.Resource
	written int64
}

// NewStoreWriter returns a writer of batchSize resources per transaction;
// zero means DefaultStoreBatch.
func NewStoreWriter(st store.ResourceStore, batchSize int) *StoreWriter {
	if batchSize <= 0 {
		batchSize = DefaultStoreBatch
	}
	return &StoreWriter{st: st, size: batchSize}
}

// Add queues r, and writes the batch when it is full. r must have a type
// and a valid id, and must not change afterwards.
func (w *StoreWriter) Add(ctx context.Context, r *resource.Resource) error {
	w.batch = append(w.batch, r)
	if len(w.batch) < w.size {
		return nil
	}
	return w.Flush(ctx)
}

// Flush writes the queued resources.
func (w *StoreWriter) Flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	if _, err := writeBatch(ctx, w.st, w.batch); err != nil {
		return err
	}
	w.written += int64(len(w.batch))
	clear(w.batch)
	w.batch = w.batch[:0]
	return nil
}

// Written is the number of resources committed so far.
func (w *StoreWriter) Written() int64 { return w.written }
