package loader

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/store"
)

// ToStore loads the NDJSON of srcs straight into st, Options.BatchSize
// resources per transaction, each resource stored under its own id as an
// update (creating it when new). Transactions run one after another in
// input order, so when an id appears twice the later line wins. On error
// the Result counts what was committed before it; loading the same files
// again is safe.
func ToStore(ctx context.Context, st store.ResourceStore, srcs []Source, opts Options) (*Result, error) {
	o := opts.withDefaults(DefaultStoreBatch)
	return run(ctx, srcs, o, func(_ context.Context, _ *errgroup.Group, t *tally) sink {
		return &storeSink{st: st, t: t, size: o.BatchSize}
	})
}

// storeSink writes batches in order, one transaction at a time.
type storeSink struct {
	st    store.ResourceStore
	t     *tally
	size  int
	batch []entry
	res   []*resource.Resource
}

func (s *storeSink) add(ctx context.Context, e entry) error {
	e.raw = nil // the store takes the parsed resource
	s.batch = append(s.batch, e)
	if len(s.batch) < s.size {
		return nil
	}
	return s.flush(ctx)
}

func (s *storeSink) finish(ctx context.Context) error { return s.flush(ctx) }

func (s *storeSink) flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	s.res = s.res[:0]
	for _, e := range s.batch {
		s.res = append(s.res, e.res)
	}
	if i, err := writeBatch(ctx, s.st, s.res); err != nil {
		if i >= 0 {
			// A store failure is no fault of the line, so it is not a
			// LineError (SkipInvalid does not skip it); the position
			// helps find out what the store disliked.
			e := s.batch[i]
			return fmt.Errorf("%s:%d: %w", s.t.files[e.file].Name, e.line, err)
		}
		return err
	}
	s.t.written(s.batch)
	clear(s.batch)
	s.batch = s.batch[:0]
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
