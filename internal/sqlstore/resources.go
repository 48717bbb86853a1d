package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Interactions recorded in history.method (R4 Bundle.entry.request.method).
const (
	methodPost   = "POST"
	methodPut    = "PUT"
	methodDelete = "DELETE"
)

// Statements of the write path, prepared once on the writer connection
// (prepareWrites) instead of parsed on every call.
const (
	sqlMaxTS          = "SELECT COALESCE(MAX(ts), 0) FROM history"
	sqlLockCurrent    = "SELECT rid, vid, seq, deleted FROM resources WHERE type = ? AND id = ?"
	sqlInsertCurrent  = `INSERT INTO resources (type, id, vid, ts, deleted, seq) VALUES (?, ?, 1, ?, ?, 0) ON CONFLICT (type, id) DO NOTHING RETURNING rid`
	sqlInsertHistory  = `INSERT INTO history (rid, type, id, vid, ts, method, body) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`
	sqlSupersede      = "UPDATE history SET superseded_ts = ? WHERE seq = ?"
	sqlPointToVersion = "UPDATE resources SET vid = ?, ts = ?, deleted = ?, seq = ? WHERE rid = ?"
)

const (
	sqlRead = `SELECT r.vid, r.ts, h.method, h.body FROM resources r JOIN history h ON h.seq = r.seq
		WHERE r.type = ? AND r.id = ?`
	sqlVRead = `SELECT h.ts, h.method, h.body FROM resources r JOIN history h ON h.rid = r.rid
		WHERE r.type = ? AND r.id = ? AND h.vid = ?`
)

// stmts are the statements of the hot read path, prepared once per
// connection instead of parsed on every request.
type stmts struct {
	read, vread *sql.Stmt
	// writes are the write path's statements by SQL text (prepareWrites).
	writes map[string]*sql.Stmt
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.stmts.read, err = s.r.PrepareContext(ctx, s.d.rebind(sqlRead)); err != nil {
		return fmt.Errorf("prepare read: %w", err)
	}
	if s.stmts.vread, err = s.r.PrepareContext(ctx, s.d.rebind(sqlVRead)); err != nil {
		return fmt.Errorf("prepare vread: %w", err)
	}
	return s.prepareWrites(ctx)
}

func (st *stmts) close() {
	for _, p := range st.writes {
		p.Close()
	}
	for _, p := range []*sql.Stmt{st.read, st.vread} {
		if p != nil {
			p.Close()
		}
	}
}

// Read returns the current version of typ/id.
func (s *Store) Read(ctx context.Context, typ, id string) (*store.Version, error) {
	return scanCurrent(s.stmts.read.QueryRowContext(ctx, typ, id), typ, id)
}

func scanCurrent(row *sql.Row, typ, id string) (*store.Version, error) {
	v := &store.Version{Type: typ, ID: id}
	var ts int64
	if err := row.Scan(&v.VersionID, &ts, &v.Method, &v.Body); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	return finishVersion(v, ts)
}

func finishVersion(v *store.Version, ts int64) (*store.Version, error) {
	v.LastUpdated = fromMicros(ts)
	if v.Method == methodDelete {
		v.Deleted, v.Body = true, nil
		return v, store.ErrDeleted
	}
	return v, nil
}

// VRead returns version vid of typ/id.
func (s *Store) VRead(ctx context.Context, typ, id string, vid int64) (*store.Version, error) {
	v := &store.Version{Type: typ, ID: id, VersionID: vid}
	var ts int64
	err := s.stmts.vread.QueryRowContext(ctx, typ, id, vid).Scan(&ts, &v.Method, &v.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return finishVersion(v, ts)
}

// History lists versions newest first, one page at a time.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) (*store.HistoryPage, error) {
	if q.Count <= 0 {
		q.Count = 50
	}
	var where []string
	var args []any
	from := "history h"
	switch {
	case q.ID != "":
		from = "history h JOIN resources r ON r.rid = h.rid"
		where = append(where, "r.type = ?", "r.id = ?")
		args = append(args, q.Type, q.ID)
	case q.Type != "":
		where = append(where, "h.type = ?")
		args = append(args, q.Type)
	}
	if !q.Since.IsZero() {
		where = append(where, "h.ts >= ?")
		args = append(args, micros(q.Since))
	}
	if !q.Before.IsZero() {
		where = append(where, "h.ts < ?")
		args = append(args, micros(q.Before))
	}
	if q.After != nil {
		where = append(where, "(h.ts < ? OR (h.ts = ? AND h.seq < ?))")
		args = append(args, q.After.TS, q.After.TS, q.After.Seq)
	}
	query := "SELECT h.type, h.id, h.vid, h.ts, h.method, h.body, h.seq FROM " + from
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY h.ts DESC, h.seq DESC LIMIT ?"
	args = append(args, q.Count+1)
	rows, err := s.r.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := &store.HistoryPage{}
	var last store.HistoryCursor
	for rows.Next() {
		var v store.Version
		var ts, seq int64
		if err := rows.Scan(&v.Type, &v.ID, &v.VersionID, &ts, &v.Method, &v.Body, &seq); err != nil {
			return nil, err
		}
		if len(page.Versions) == q.Count {
			page.Next = &last
			break
		}
		finishVersion(&v, ts)
		page.Versions = append(page.Versions, v)
		last = store.HistoryCursor{TS: ts, Seq: seq}
	}
	return page, rows.Err()
}

// Write runs fn in one transaction, retrying it when PostgreSQL reports a
// serialization failure or deadlock (their only cure is to run again).
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		if err = s.writeOnce(ctx, fn); !s.retryable(err) {
			return err
		}
	}
	return err
}

func (s *Store) writeOnce(ctx context.Context, fn func(store.Tx) error) error {
	return s.inWriteTx(ctx, func(_ context.Context, sqlTx *sql.Tx) error {
		t := &tx{s: s, tx: sqlTx}
		if err := fn(t); err != nil {
			return err
		}
		return t.flushIndex(ctx)
	})
}

// tx implements store.Tx.
type tx struct {
	s  *Store
	tx *sql.Tx
	// ts is the timestamp of every version this transaction writes; 0
	// until the first write. One timestamp per transaction keeps a
	// transaction whole in any snapshot taken by time.
	ts int64
	// idx holds index rows not yet inserted (index.go).
	idx rowBuffer
	// pre is the index rows the caller prepared for the version being
	// written (PrepareIndex), or nil to extract them here.
	pre *search.Rows
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.s.stmts.writes[q]; st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, t.s.d.rebind(q), args...)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.s.stmts.writes[q]; st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, t.s.d.rebind(q), args...)
}

// prepareWrites prepares the write path's statements on the writer pool.
// On SQLite that pool is one connection, so a transaction reuses them
// without parsing; it must run before the group committer takes that
// connection. The map is read-only afterwards.
func (s *Store) prepareWrites(ctx context.Context) error {
	qs := []string{sqlMaxTS, sqlLockCurrent + s.d.forUpdate(), sqlInsertCurrent, sqlInsertHistory,
		sqlSupersede, sqlPointToVersion, sqlRead}
	s.stmts.writes = make(map[string]*sql.Stmt, len(qs))
	for _, q := range qs {
		st, err := s.w.PrepareContext(ctx, s.d.rebind(q))
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.stmts.writes[q] = st
	}
	return nil
}

// stamp fixes the transaction's timestamp at its first write. On SQLite it
// is the clock, but always after the newest stored version, so timestamps
// strictly increase across transactions even if the clock steps back. On
// PostgreSQL it is the database clock, read after the transaction has its
// id, so that an export snapshot can wait for every transaction that could
// still commit a version older than the snapshot.
func (t *tx) stamp(ctx context.Context) (int64, error) {
	if t.ts != 0 {
		return t.ts, nil
	}
	if t.s.d.pg {
		var xid string
		if err := t.queryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid); err != nil {
			return 0, err
		}
		if err := t.queryRow(ctx, "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint").Scan(&t.ts); err != nil {
			return 0, err
		}
		return t.ts, nil
	}
	var newest int64
	if err := t.queryRow(ctx, sqlMaxTS).Scan(&newest); err != nil {
		return 0, err
	}
	t.ts = max(micros(t.s.now()), newest+1)
	return t.ts, nil
}

func (t *tx) Read(ctx context.Context, typ, id string) (*store.Version, error) {
	return scanCurrent(t.queryRow(ctx, sqlRead, typ, id), typ, id)
}

// current is the row of resources for one logical resource.
type current struct {
	rid, vid, seq int64
	deleted       bool
}

func (t *tx) lockCurrent(ctx context.Context, typ, id string) (*current, error) {
	c := &current{}
	err := t.queryRow(ctx, sqlLockCurrent+t.s.d.forUpdate(),
		typ, id).Scan(&c.rid, &c.vid, &c.seq, &c.deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c, err
}

// insertCurrent inserts the resources row of a new resource. It returns 0
// when another transaction created the same type/id first.
func (t *tx) insertCurrent(ctx context.Context, typ, id string, ts int64) (int64, error) {
	var rid int64
	err := t.queryRow(ctx, sqlInsertCurrent, typ, id, ts, false).Scan(&rid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return rid, err
}

func (t *tx) Create(ctx context.Context, r *resource.Resource) (*store.Version, error) {
	ts, err := t.stamp(ctx)
	if err != nil {
		return nil, err
	}
	rid, err := t.insertCurrent(ctx, r.Type, r.ID, ts)
	if err != nil {
		return nil, err
	}
	if rid == 0 {
		return nil, store.ErrExists
	}
	t.pre = prepared(r)
	return t.writeVersion(ctx, rid, nil, r.Type, r.ID, 1, methodPost, r.Render(1, fromMicros(ts)))
}

func (t *tx) Update(ctx context.Context, r *resource.Resource, ifMatch int64) (*store.Version, bool, error) {
	ts, err := t.stamp(ctx)
	if err != nil {
		return nil, false, err
	}
	for {
		cur, err := t.lockCurrent(ctx, r.Type, r.ID)
		if err != nil {
			return nil, false, err
		}
		if cur != nil {
			if ifMatch > 0 && cur.vid != ifMatch {
				return nil, false, store.ErrVersionConflict
			}
			t.pre = prepared(r)
			v, err := t.writeVersion(ctx, cur.rid, cur, r.Type, r.ID, cur.vid+1, methodPut, r.Render(cur.vid+1, fromMicros(ts)))
			return v, false, err
		}
		if ifMatch > 0 {
			return nil, false, store.ErrVersionConflict
		}
		rid, err := t.insertCurrent(ctx, r.Type, r.ID, ts)
		if err != nil {
			return nil, false, err
		}
		if rid != 0 {
			t.pre = prepared(r)
			v, err := t.writeVersion(ctx, rid, nil, r.Type, r.ID, 1, methodPut, r.Render(1, fromMicros(ts)))
			return v, true, err
		}
		// Another transaction created it between our read and insert:
		// lock its row and update instead.
	}
}

func (t *tx) Delete(ctx context.Context, typ, id string, ifMatch int64) (*store.Version, error) {
	cur, err := t.lockCurrent(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, store.ErrNotFound
	}
	if ifMatch > 0 && cur.vid != ifMatch {
		return nil, store.ErrVersionConflict
	}
	if cur.deleted {
		v, err := t.Read(ctx, typ, id)
		if errors.Is(err, store.ErrDeleted) {
			err = nil
		}
		return v, err
	}
	if _, err := t.stamp(ctx); err != nil {
		return nil, err
	}
	v, err := t.writeVersion(ctx, cur.rid, cur, typ, id, cur.vid+1, methodDelete, nil)
	if err != nil {
		return nil, err
	}
	v.Deleted = true
	return v, nil
}

// writeVersion appends a version to history, marks the previous one
// superseded and points resources at the new one.
func (t *tx) writeVersion(ctx context.Context, rid int64, prev *current, typ, id string, vid int64, method string, body []byte) (*store.Version, error) {
	var seq int64
	err := t.queryRow(ctx, sqlInsertHistory,
		rid, typ, id, vid, t.ts, method, body).Scan(&seq)
	if err != nil {
		return nil, fmt.Errorf("insert history: %w", err)
	}
	if prev != nil {
		if _, err := t.exec(ctx, sqlSupersede, t.ts, prev.seq); err != nil {
			return nil, err
		}
	}
	if _, err := t.exec(ctx, sqlPointToVersion,
		vid, t.ts, method == methodDelete, seq, rid); err != nil {
		return nil, err
	}
	if err := t.index(ctx, rid, typ, body, prev == nil); err != nil {
		return nil, err
	}
	return &store.Version{Type: typ, ID: id, VersionID: vid, LastUpdated: fromMicros(t.ts), Method: method, Body: body}, nil
}

// Lock takes a transaction-scoped lock on key. SQLite transactions already
// hold the database's write lock, so only PostgreSQL needs one.
func (t *tx) Lock(ctx context.Context, key string) error {
	if !t.s.d.pg {
		return nil
	}
	_, err := t.exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", key)
	return err
}

func (t *tx) ScanType(ctx context.Context, typ string, fn func(id string, body []byte) bool) error {
	rows, err := t.tx.QueryContext(ctx, t.s.d.rebind(`SELECT r.id, h.body FROM resources r JOIN history h ON h.seq = r.seq
		WHERE r.type = ? AND r.deleted = ?`), typ, false)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		if !fn(id, body) {
			break
		}
	}
	return rows.Err()
}
