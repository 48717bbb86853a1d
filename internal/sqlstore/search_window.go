package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// Date-window order.
//
// A search whose only criterion is an interval of one date parameter
// (Observation?date=ge2024-03-01&date=lt2024-04-01) matches a share of
// the resources that grows with the database: a month of a payer's
// Observations is thousands of rows at a million resources. Ordered by
// rid, the first page would need all of them sorted to keep 21, and its
// cost would grow with the data (docs/BENCHMARKS.md, "search-date").
//
// Such a search, without _sort, is answered in date order instead: the
// index rows come out of the partial index idx_date_narrow (pid, low) in
// the order of low, so a page costs the rows it returns, whatever the
// size of the database. Each resource appears once, at its earliest
// matching date: a row is dropped when an earlier row of the same
// resource matches the window (a probe of idx_date_rid), and identical
// (rid, low) rows are merged by the UNION. Wide rows (periods and open
// ends, idx_date_wide) are few and are merged into the same order. Pages
// continue with a cursor of (low, rid). FHIR leaves the order of a search
// without _sort to the server (R4 search.html#sort), and date order is
// what a client of a date window expects anyway.
//
// Both backends have the two partial indexes (SQLite migration 0004,
// PostgreSQL 0006). SQLite merges the two arms with its ordered UNION,
// which also merges identical (rid, low) rows; PostgreSQL would hash or
// sort a UNION whole, so there each arm is cut to the page size in index
// order, duplicates are ruled out by breaking ties on the row's ctid, and
// the arms are concatenated (UNION ALL) and ordered again.

// windowSig marks the cursors of date-window order: a cursor of another
// order is refused rather than misread.
const windowSig = "~date-window"

// dateWindow is what intervalSet knows of a single-parameter interval.
type dateWindow struct {
	cond       string // the interval's condition on "{a}", pid included
	args       []any
	pid        any
	narrowFrom int64 // narrow rows matching the window have low > narrowFrom
	minHigh    int64 // wide rows matching the window have high >= minHigh
}

// windowPage selects up to limit rows of the window in date order after
// (or, backward, before) the cursor.
func (c *compiler) windowPage(ctx context.Context, db queryer, w *dateWindow, cur *cursor, limit int) ([]pageRow, error) {
	q, args := c.windowSQL(w, cur, limit)
	if pool, ok := db.(*sql.DB); ok && c.s.d.pg {
		// PostgreSQL overestimates the wide rows (a partial index on an
		// expression): it would start parallel workers to sort them and
		// hash every row of the window for the anti join, each costing
		// more than the whole page. In a read-only transaction of its
		// own the query runs without parallel workers and with the anti
		// joins as index probes.
		tx, err := pool.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SELECT set_config('max_parallel_workers_per_gather', '0', true), "+
			"set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		db = tx
	}
	rows, err := c.s.query(ctx, db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []pageRow
	for rows.Next() {
		var r pageRow
		var low int64
		if err := rows.Scan(&r.rid, &low); err != nil {
			return nil, err
		}
		r.keys = []any{low}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (c *compiler) windowSQL(w *dateWindow, cur *cursor, limit int) (string, []any) {
	backward := cur != nil && cur.backward
	dir := "ASC"
	if backward {
		dir = "DESC"
	}
	var args []any
	pg := c.s.d.pg
	arm := func(index, spanCond, boundCol string, bound int64) string {
		a, d := c.nextAlias(), c.nextAlias()
		from := "idx_date " + a + " INDEXED BY " + index
		probe := "idx_date " + d
		earlier := d + ".low < " + a + ".low"
		if pg {
			from = "idx_date " + a
			// The probe must go by rid: with low and high hidden behind
			// + 0, no index on them tempts the planner (without fresh
			// statistics it chose idx_date_high and read a whole range
			// per probe).
			probe = "(SELECT rid, pid, low + 0 AS low, high + 0 AS high, ctid FROM idx_date) " + d
			earlier = "(" + earlier + " OR (" + d + ".low = " + a + ".low AND " + d + ".ctid < " + a + ".ctid))"
		}
		s := "SELECT " + a + ".rid AS rid, " + a + ".low AS low FROM " + from +
			" WHERE " + a + ".pid = ? AND " + expand(spanCond, a) + " AND " + a + "." + boundCol + " ? AND " + expand(w.cond, a) +
			" AND NOT EXISTS (SELECT 1 FROM " + probe + " WHERE " + d + ".rid = " + a + ".rid AND " + expand(w.cond, d) +
			" AND " + earlier + ")"
		args = append(args, w.pid, bound)
		args = append(args, w.args...)
		args = append(args, w.args...)
		if cur != nil {
			op := ">"
			if backward {
				op = "<"
			}
			s += " AND (" + a + ".low " + op + " ? OR (" + a + ".low = ? AND " + a + ".rid " + op + " ?))"
			low := cur.keys[0]
			args = append(args, low, low, cur.rid)
		}
		if pg {
			// The wide arm sorts its few rows by low + 0: ordered by low
			// itself, the planner would walk idx_date_low through every
			// row before the window's end, hoping for early matches.
			key := a + ".low"
			if index == "idx_date_wide" {
				key += " + 0"
			}
			s = "(" + s + " ORDER BY " + key + " " + dir + ", " + a + ".rid " + dir + " LIMIT " + strconv.Itoa(limit) + ")"
		}
		return s
	}
	narrow := arm("idx_date_narrow", "{a}.high < {a}.low + "+narrowSpanSQL, "low >", w.narrowFrom)
	wide := arm("idx_date_wide", "{a}.high >= {a}.low + "+narrowSpanSQL, "high >=", w.minHigh)
	order := " ORDER BY low " + dir + ", rid " + dir + " LIMIT " + strconv.Itoa(limit)
	if pg {
		return c.s.d.rebind("SELECT rid, low FROM (" + narrow + " UNION ALL " + wide + ") w" + order), args
	}
	return narrow + " UNION " + wide + order, args
}

func encodeWindowCursor(r pageRow, backward bool) string {
	w := wireCursor{Dir: "n", Sig: windowSig, RID: r.rid}
	if backward {
		w.Dir = "p"
	}
	b, _ := json.Marshal(r.keys[0])
	w.Keys = []json.RawMessage{b}
	b, _ = json.Marshal(w)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeWindowCursor reads a cursor of a date-window search; nil for none.
func decodeWindowCursor(raw string) (*cursor, error) {
	if raw == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, errBadCursor(raw)
	}
	var w wireCursor
	if err := json.Unmarshal(b, &w); err != nil || (w.Dir != "n" && w.Dir != "p") || w.Sig != windowSig || len(w.Keys) != 1 {
		return nil, errBadCursor(raw)
	}
	low, err := strconv.ParseInt(string(w.Keys[0]), 10, 64)
	if err != nil {
		return nil, errBadCursor(raw)
	}
	return &cursor{backward: w.Dir == "p", rid: w.RID, keys: []any{low}}, nil
}
