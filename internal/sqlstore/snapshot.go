package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/internal/store"
)

// snapshotPoint fixes the snapshot of an export inside the transaction that
// creates the job, returning it (microseconds) and, on PostgreSQL, the
// transaction id horizon to wait for.
//
// SQLite serializes writers, and a write transaction stamps its versions
// with max(clock, MAX(history.ts)+1). Inside this write transaction every
// committed version is at or before MAX(history.ts), and every later write
// lands after it; one microsecond below the clock keeps the later writes
// after the snapshot even when they read the same clock value.
//
// On PostgreSQL writers run concurrently, and each one takes its
// transaction id before it reads the clock for its timestamp (tx.stamp).
// The horizon is the id this transaction takes after reading the clock:
// ids are handed out in increasing order, so a transaction that stamped a
// version at or before the snapshot has an id below the horizon. Once every
// transaction below the horizon has ended (ExportSnapshotReady), the
// versions at or before the snapshot are final.
//
// pg_snapshot_xmax(pg_current_snapshot()) would not do as the horizon: it
// is the latest completed id plus one, which a transaction still running
// may equal (snapshot "x:x:" with x in progress), so waiting for it would
// not wait for that transaction.
func (s *Store) snapshotPoint(ctx context.Context, tx *sql.Tx) (at, horizon int64, err error) {
	if !s.d.pg {
		var newest int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(ts), 0) FROM history").Scan(&newest); err != nil {
			return 0, 0, err
		}
		return max(newest, micros(s.now())-1), 0, nil
	}
	if err := tx.QueryRowContext(ctx, "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint").Scan(&at); err != nil {
		return 0, 0, err
	}
	var h string
	if err := tx.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text").Scan(&h); err != nil {
		return 0, 0, err
	}
	horizon, err = strconv.ParseInt(h, 10, 64)
	return at, horizon, err
}

// ExportSnapshotReady reports whether every transaction below the job's
// horizon has ended: the oldest transaction still running (the xmin of a
// fresh snapshot, or its xmax when none runs) is at or above it.
func (s *Store) ExportSnapshotReady(ctx context.Context, job *store.ExportJob) (bool, error) {
	if !s.d.pg || job.Horizon == 0 {
		return true, nil
	}
	var xmin string
	if err := s.r.QueryRowContext(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&xmin); err != nil {
		return false, err
	}
	x, err := strconv.ParseInt(xmin, 10, 64)
	if err != nil {
		return false, err
	}
	return x >= job.Horizon, nil
}

// Snapshot visibility: the version of a resource visible at T is the row
// with ts <= T whose successor (if any) came after T.
const (
	sqlSnapshotLive = `SELECT seq, ts, id, body FROM history
		WHERE type = ? AND (ts, seq) > (?, ?) AND ts <= ? AND method <> 'DELETE'
		AND (superseded_ts IS NULL OR superseded_ts > ?)
		ORDER BY ts, seq LIMIT ?`
	// A deletion still in force at T, with the body of the version it
	// ended (vid - 1), which decides compartment membership and filters.
	sqlSnapshotDeleted = `SELECT h.seq, h.ts, h.id, p.body FROM history h
		LEFT JOIN history p ON p.rid = h.rid AND p.vid = h.vid - 1
		WHERE h.type = ? AND (h.ts, h.seq) > (?, ?) AND h.ts <= ? AND h.method = 'DELETE'
		AND (h.superseded_ts IS NULL OR h.superseded_ts > ?)
		ORDER BY h.ts, h.seq LIMIT ?`
)

// ScanSnapshot reads one page of a snapshot scan.
func (s *Store) ScanSnapshot(ctx context.Context, q store.SnapshotQuery, fn func(store.SnapshotRow) error) error {
	query := sqlSnapshotLive
	if q.Deleted {
		query = sqlSnapshotDeleted
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	at := micros(q.At)
	conn, release, err := s.scanConn(ctx)
	if err != nil {
		return err
	}
	defer release()
	rows, err := conn.QueryContext(ctx, s.d.rebind(query), q.Type, q.After.TS, q.After.Seq, at, at, q.Limit)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r store.SnapshotRow
		if err := rows.Scan(&r.Cursor.Seq, &r.Cursor.TS, &r.ID, &r.Body); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ScanSnapshotRange reads one page of a range scan in seq order: the
// primary key, so the table is read sequentially.
func (s *Store) ScanSnapshotRange(ctx context.Context, q store.SnapshotRangeQuery, fn func(store.SnapshotRow) error) error {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	at := micros(q.At)
	conn, release, err := s.scanConn(ctx)
	if err != nil {
		return err
	}
	defer release()
	rows, err := conn.QueryContext(ctx, s.d.rebind(`SELECT seq, ts, type, id, body FROM history
		WHERE seq > ? AND seq <= ? AND ts <= ? AND method <> 'DELETE' AND (superseded_ts IS NULL OR superseded_ts > ?)
		ORDER BY seq LIMIT ?`), q.AfterSeq, q.UpToSeq, at, at, q.Limit)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r store.SnapshotRow
		if err := rows.Scan(&r.Cursor.Seq, &r.Cursor.TS, &r.Type, &r.ID, &r.Body); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanCacheKiB is the SQLite page cache of a connection while it serves
// an export scan. A scan reads each page once, so a cache only costs
// memory: with the pool's default (32 MiB per connection) the readers of
// a large export would hold well over 100 MiB of pages.
const scanCacheKiB = 2048

// scanConn returns a read connection for an export scan and a function
// that returns it to the pool. On SQLite the connection's page cache is
// shrunk for the scan and its size restored afterwards.
func (s *Store) scanConn(ctx context.Context) (*sql.Conn, func(), error) {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.d.pg {
		return conn, func() { conn.Close() }, nil
	}
	var size int64
	if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&size); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = "+strconv.Itoa(-scanCacheKiB)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, func() {
		conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA cache_size = "+strconv.FormatInt(size, 10))
		conn.Close()
	}, nil
}

// MaxHistorySeq returns the largest history seq.
func (s *Store) MaxHistorySeq(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM history").Scan(&n)
	return n, err
}

// SnapshotHasRows probes the history_type_ts index for one row.
func (s *Store) SnapshotHasRows(ctx context.Context, q store.SnapshotQuery) (bool, error) {
	query := `SELECT 1 FROM history WHERE type = ? AND (ts, seq) > (?, ?) AND ts <= ? LIMIT 1`
	if q.Deleted {
		query = `SELECT 1 FROM history WHERE type = ? AND (ts, seq) > (?, ?) AND ts <= ? AND method = 'DELETE' LIMIT 1`
	}
	var one int
	err := s.r.QueryRowContext(ctx, s.d.rebind(query), q.Type, q.After.TS, q.After.Seq, micros(q.At)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ReadSnapshot returns the version of typ/id visible at at.
func (s *Store) ReadSnapshot(ctx context.Context, typ, id string, at time.Time) (*store.Version, error) {
	v := &store.Version{Type: typ, ID: id}
	var ts int64
	t := micros(at)
	err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT h.vid, h.ts, h.method, h.body FROM resources r JOIN history h ON h.rid = r.rid
		WHERE r.type = ? AND r.id = ? AND h.ts <= ? AND (h.superseded_ts IS NULL OR h.superseded_ts > ?)`),
		typ, id, t, t).Scan(&v.VersionID, &ts, &v.Method, &v.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return finishVersion(v, ts)
}
