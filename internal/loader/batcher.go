package loader

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// batch is a batch of entries on its way to the destination: a database
// transaction or a Bundle.
type batch struct {
	entries []entry
	// keys are the Type/id of the entries.
	keys map[string]struct{}
	// done is closed when the batch is written or has failed.
	done chan struct{}
	// The Bundle of ToServer; empty for ToStore.
	typ   string
	body  []byte
	spans []span // where each entry's JSON sits in body
}

type span struct{ start, end int }

// batcher cuts the entries into batches and delivers up to parallel of them
// at once. Batches may finish out of order, except that a batch waits for
// every batch in flight that changes one of its resources, so that the
// later line of a repeated id always wins.
type batcher struct {
	size     int // entries per batch
	maxBytes int // cut a batch before its body grows past this; 0: no limit
	g        *errgroup.Group
	sem      chan struct{}
	// newBatch starts a batch; put adds an entry to one.
	newBatch func() *batch
	put      func(b *batch, key string, e entry)
	// deliver writes a batch; its error ends the load.
	deliver func(ctx context.Context, b *batch) error

	cur *batch
	// inflight are the batches delivered and not yet known to be done.
	inflight []*batch
}

func newBatcher(g *errgroup.Group, size, parallel int) *batcher {
	return &batcher{size: size, g: g, sem: make(chan struct{}, parallel)}
}

func (s *batcher) add(ctx context.Context, e entry) error {
	key := e.res.Type + "/" + e.res.ID
	if s.cur != nil {
		_, dup := s.cur.keys[key]
		if dup || s.maxBytes > 0 && len(s.cur.body)+len(e.raw) > s.maxBytes {
			// A transaction may touch each resource once (R4
			// http.html#trules); the second one goes in the next batch.
			if err := s.send(ctx); err != nil {
				return err
			}
		}
	}
	if err := s.waitFor(ctx, key); err != nil {
		return err
	}
	if s.cur == nil {
		s.cur = s.newBatch()
	}
	s.put(s.cur, key, e)
	s.cur.keys[key] = struct{}{}
	if len(s.cur.entries) >= s.size {
		return s.send(ctx)
	}
	return nil
}

// waitFor waits until no batch in flight changes key.
func (s *batcher) waitFor(ctx context.Context, key string) error {
	kept := s.inflight[:0]
	for _, b := range s.inflight {
		select {
		case <-b.done:
			continue
		default:
		}
		if _, ok := b.keys[key]; ok {
			select {
			case <-b.done:
				continue
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		kept = append(kept, b)
	}
	clear(s.inflight[len(kept):])
	s.inflight = kept
	return nil
}

// send delivers the current batch in the background once a slot is free.
func (s *batcher) send(ctx context.Context) error {
	b := s.cur
	s.cur = nil
	if b == nil || len(b.entries) == 0 {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	s.inflight = append(s.inflight, b)
	s.g.Go(func() error {
		defer func() { <-s.sem }()
		defer close(b.done)
		return s.deliver(ctx, b)
	})
	return nil
}

// finish delivers the last batch and waits for every batch in flight.
func (s *batcher) finish(ctx context.Context) error {
	if err := s.send(ctx); err != nil {
		return err
	}
	for _, b := range s.inflight {
		select {
		case <-b.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

func newKeys(n int) map[string]struct{} { return make(map[string]struct{}, n) }
