package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// Prepared read statements for SQLite.
//
// database/sql prepares a statement for every QueryContext, and SQLite's
// parser and planner are a large part of a search's cost: 18% of the
// server's CPU under a date-window search load at 1M resources. The
// searches of a server repeat a few statement texts (the first page of a
// shape, its next pages, the body load of a page of 20), so the reader
// pool keeps them prepared, keyed by text; database/sql prepares each
// once per connection. The cache is bounded: past readStmtMax texts,
// statements run unprepared. PostgreSQL plans are cheap next to the
// round trip and pgx keeps its own statement cache, so it goes without.
const readStmtMax = 64

type readStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// query runs text on db, through a cached prepared statement when db is
// the SQLite reader pool.
func (s *Store) query(ctx context.Context, db queryer, text string, args ...any) (*sql.Rows, error) {
	if s.d.pg || db != queryer(s.r) {
		return db.QueryContext(ctx, text, args...)
	}
	st, err := s.readStmt(ctx, text)
	if err != nil || st == nil {
		return db.QueryContext(ctx, text, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (s *Store) readStmt(ctx context.Context, text string) (*sql.Stmt, error) {
	c := &s.reads
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[text]; ok {
		return st, nil
	}
	if len(c.m) >= readStmtMax {
		return nil, nil
	}
	st, err := s.r.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[text] = st
	return st, nil
}

func (c *readStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}
