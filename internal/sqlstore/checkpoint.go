package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Background WAL checkpoints for SQLite.
//
// In WAL mode a commit appends pages to the -wal file; a checkpoint copies
// them back into the database file and fsyncs it. By default SQLite runs
// the checkpoint inside the commit that takes the WAL past 1,000 pages, on
// the writer connection: with one writer, every write waits while it
// runs (about a sixth of the writer's time when loading into a database of
// a million resources). Here a goroutine with a connection of its own runs
// PASSIVE checkpoints after commits instead, while the writer goes on (a
// PASSIVE checkpoint never blocks the writer or readers: it copies what no
// reader still needs and leaves the rest for the next run). The writer
// keeps an automatic checkpoint at ckptWriterPages as a safety net, should
// the background one fall behind.
const (
	// ckptWriterPages is the writer connection's wal_autocheckpoint: 64 MiB
	// of 4 KiB pages.
	ckptWriterPages = 16384
	// ckptMinInterval spaces background checkpoints, so a stream of small
	// commits does not turn into a stream of fsyncs of the database file.
	ckptMinInterval = 100 * time.Millisecond
)

// checkpointer runs background checkpoints on its own connection.
type checkpointer struct {
	db   *sql.DB
	runs atomic.Int64 // checkpoints run, for tests
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer that the WAL has grown; it never blocks.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.stop:
			return
		}
		start := time.Now()
		if _, err := c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			// Not fatal: the writer's automatic checkpoint still runs.
			slog.Warn("sqlite: background checkpoint failed", "err", err)
		}
		c.runs.Add(1)
		select {
		case <-time.After(ckptMinInterval - time.Since(start)):
		case <-c.stop:
			return
		}
	}
}

// close stops the goroutine and closes its connection; closing twice is
// harmless, as for the Store.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.err = c.db.Close()
	})
	return c.err
}
