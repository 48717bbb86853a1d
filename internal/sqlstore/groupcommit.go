package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Group commit for SQLite.
//
// SQLite has one writer, and with synchronous=FULL every commit waits for
// an fsync (milliseconds on common disks). Committing each request's
// transaction on its own would cap writes at a few hundred per second
// however small they are. Instead, one goroutine owns the writer
// connection: it takes every write waiting in the queue, runs each inside
// its own SAVEPOINT of one SQLite transaction, and commits once. A request
// whose work fails is rolled back to its savepoint alone; the others still
// commit. Every request learns its outcome only after the commit, so a
// success is always durable. PostgreSQL needs none of this: its WAL writer
// already groups the flushes of concurrent connections.

// maxGroup bounds the requests committed together, so the first of a
// group does not wait for an unbounded number of others.
const maxGroup = 128

type writeReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

var errClosed = errors.New("sqlstore: store is closed")

// startCommitter starts the SQLite writer goroutine.
func (s *Store) startCommitter() {
	s.writes = make(chan *writeReq, maxGroup)
	s.stopWriter = make(chan struct{})
	s.writerDone = make(chan struct{})
	go s.committer()
}

func (s *Store) committer() {
	defer close(s.writerDone)
	for {
		var first *writeReq
		select {
		case first = <-s.writes:
		case <-s.stopWriter:
			return
		}
		group := []*writeReq{first}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break drain
			}
		}
		s.commitGroup(group)
	}
}

// commitGroup runs a group in one transaction and tells each request its
// outcome after the commit.
//
// Savepoints are not free: SQLite keeps a savepoint's journal in memory
// and truncating it costs time that grows with the transaction (it was
// most of the CPU of 1,000-resource load batches). So a group first runs
// without any: a group of one needs none, since a failure rolls back only
// its own work, and a larger group whose requests all succeed needs none
// either. Only when a request of a larger group fails is the group rolled
// back and run again with a savepoint around each request. Write functions
// may run more than once (store.Tx documents it; PostgreSQL retries them
// too), so the second run is safe.
func (s *Store) commitGroup(group []*writeReq) {
	results, ok := s.runGroup(group, len(group) > 1)
	if !ok {
		results, _ = s.runGroup(group, false)
	}
	for i, r := range group {
		r.done <- results[i]
	}
}

// runGroup runs every request of group in one transaction. When fast is
// set it uses no savepoints and gives up (rolled back, ok false) at the
// first request that fails; otherwise each request runs in its own
// savepoint (or alone, for a group of one).
func (s *Store) runGroup(group []*writeReq, fast bool) (results []error, ok bool) {
	results = make([]error, len(group))
	// The statements run under a context that no request can cancel:
	// interrupting SQLite mid-statement would roll back the whole shared
	// transaction, taking other requests' work with it.
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		for i := range results {
			results[i] = fmt.Errorf("begin: %w", err)
		}
		return results, true
	}
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		switch {
		case fast:
			if err := runPlain(ctx, tx, r); err != nil {
				tx.Rollback()
				return nil, false
			}
		case len(group) == 1:
			results[i] = runPlain(ctx, tx, r)
			if results[i] != nil {
				tx.Rollback()
				return results, true
			}
		default:
			results[i] = runSavepoint(ctx, tx, r)
		}
	}
	if err := tx.Commit(); err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = fmt.Errorf("commit: %w", err)
			}
		}
	}
	s.ckpt.committed()
	return results, true
}

// runPlain runs one request's work without a savepoint, turning a panic
// into an error.
func runPlain(ctx context.Context, tx *sql.Tx, r *writeReq) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlstore: panic in write: %v", p)
		}
	}()
	return r.fn(ctx, tx)
}

// runSavepoint runs one request's work inside a savepoint, rolling back to
// it when the work fails or panics.
func runSavepoint(ctx context.Context, tx *sql.Tx, r *writeReq) (err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlstore: panic in write: %v", p)
		}
		if err != nil {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO w"); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		if _, rerr := tx.ExecContext(ctx, "RELEASE w"); rerr != nil && err == nil {
			err = rerr
		}
	}()
	return r.fn(ctx, tx)
}

// inWriteTx runs fn in a write transaction: on SQLite through the group
// committer, on PostgreSQL in a transaction of its own. fn must use the
// context it is given.
func (s *Store) inWriteTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.d.pg {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- r:
	case <-s.stopWriter:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// stopCommitter stops the writer goroutine after the group in progress.
func (s *Store) stopCommitter() {
	if s.stopWriter == nil {
		return
	}
	s.stopOnce.Do(func() { close(s.stopWriter) })
	<-s.writerDone
	// Requests queued after the last group get an error, not a hang.
	for {
		select {
		case r := <-s.writes:
			r.done <- errClosed
		default:
			return
		}
	}
}

// execer is what single-statement writes need: *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// exec runs a single-statement write: through the group committer on
// SQLite, straight on the pool (autocommit) on PostgreSQL.
func (s *Store) exec(ctx context.Context, fn func(ctx context.Context, q execer) error) error {
	if s.d.pg {
		return fn(ctx, s.w)
	}
	return s.inWriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return fn(ctx, tx) })
}
