package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Rebuilding the search index. Each resource type's rows were built with
// the parameter set of some registry; search_index_state records that set's
// fingerprint per type. When the registry changes (a new fhirgate release)
// or the database holds resources written before the index existed, the
// type's state is stale and Reindex rebuilds its rows, in batches that each
// commit together with the position reached, so that an interrupted run
// resumes where it stopped.

func searchTypes() []string { return fhir.ResourceTypes() }

// fingerprint identifies the indexable parameters of typ as the registry
// defines them: code, type, expression and components.
func fingerprint(typ string) string {
	h := sha256.New()
	for _, p := range search.Params(typ) {
		if !indexable(p) {
			continue
		}
		fmt.Fprintf(h, "%s\t%s\t%s\n", p.Code, p.Type, p.Expression)
		for _, c := range p.Components {
			fmt.Fprintf(h, "\t%s\t%s\t%s\n", c.Param.Code, c.Param.Type, c.Expression)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// initIndexState records the current fingerprint of every type that has no
// state yet: complete when the type has no resources (nothing to rebuild),
// else stale, for resources written before the index existed.
func (s *Store) initIndexState(ctx context.Context) error {
	have := map[string]bool{}
	rows, err := s.w.QueryContext(ctx, "SELECT type FROM search_index_state")
	if err != nil {
		return err
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		have[t] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var missing []string
	for _, t := range searchTypes() {
		if !have[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range missing {
		var one int
		err := tx.QueryRowContext(ctx, s.d.rebind("SELECT 1 FROM resources WHERE type = ? LIMIT 1"), t).Scan(&one)
		empty := errors.Is(err, sql.ErrNoRows)
		if err != nil && !empty {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO search_index_state (type, fingerprint, complete, cursor_rid)
			VALUES (?, ?, ?, 0) ON CONFLICT (type) DO NOTHING`), t, fingerprint(t), empty); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// IndexState is the search index state of one resource type.
type IndexState struct {
	Type string
	// Current is true when the type's rows were built with the running
	// registry and no rebuild is pending.
	Current bool
	// Resumable is true when a rebuild with the running registry was
	// interrupted; it continues after rid Cursor.
	Resumable bool
	Cursor    int64
}

// IndexStates reports the index state of every resource type, sorted by
// type.
func (s *Store) IndexStates(ctx context.Context) ([]IndexState, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT type, fingerprint, complete, cursor_rid FROM search_index_state ORDER BY type")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IndexState
	for rows.Next() {
		var st IndexState
		var fp string
		var complete bool
		if err := rows.Scan(&st.Type, &fp, &complete, &st.Cursor); err != nil {
			return nil, err
		}
		same := fp == fingerprint(st.Type)
		st.Current = same && complete
		st.Resumable = same && !complete && st.Cursor > 0
		out = append(out, st)
	}
	return out, rows.Err()
}

// StaleTypes lists the resource types whose index needs a rebuild.
func (s *Store) StaleTypes(ctx context.Context) ([]string, error) {
	states, err := s.IndexStates(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range states {
		if !st.Current {
			out = append(out, st.Type)
		}
	}
	return out, nil
}

// ReindexOptions select what Reindex rebuilds.
type ReindexOptions struct {
	// Types to rebuild; empty means every stale type.
	Types []string
	// Force rebuilds the types even when their index is current.
	Force bool
	// Batch is the number of resources per transaction (default 500).
	Batch int
	// Progress, when set, is called after each batch with the type, the
	// resources rebuilt so far in this run for it, and the last rid.
	Progress func(typ string, done int64, lastRID int64)
}

// ReindexResult counts what a Reindex run did.
type ReindexResult struct {
	Types     []string
	Resources int64
}

// Reindex rebuilds the search index of the types opts selects. Each batch
// of resources is re-extracted and committed with the position reached;
// after an interruption (cancelled ctx, crash) the next run resumes from
// that position when the registry is unchanged. Writes that run meanwhile
// index themselves, so the server may keep serving.
func (s *Store) Reindex(ctx context.Context, opts ReindexOptions) (*ReindexResult, error) {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	types := opts.Types
	if len(types) == 0 {
		if opts.Force {
			types = searchTypes()
		} else {
			var err error
			if types, err = s.StaleTypes(ctx); err != nil {
				return nil, err
			}
		}
	}
	res := &ReindexResult{}
	for _, t := range types {
		if !fhir.IsResourceType(t) {
			return res, fmt.Errorf("reindex: %q is not a resource type", t)
		}
		n, did, err := s.reindexType(ctx, t, opts)
		res.Resources += n
		if did {
			res.Types = append(res.Types, t)
		}
		if err != nil {
			return res, fmt.Errorf("reindex %s: %w", t, err)
		}
	}
	return res, nil
}

// reindexType rebuilds one type, starting over unless an interrupted
// rebuild with the same registry can resume. It reports whether it ran.
func (s *Store) reindexType(ctx context.Context, typ string, opts ReindexOptions) (int64, bool, error) {
	fp := fingerprint(typ)
	var oldFP string
	var complete bool
	var cursor int64
	err := s.w.QueryRowContext(ctx, s.d.rebind("SELECT fingerprint, complete, cursor_rid FROM search_index_state WHERE type = ?"), typ).
		Scan(&oldFP, &complete, &cursor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	if oldFP == fp && complete && !opts.Force {
		return 0, false, nil
	}
	if oldFP != fp || complete {
		cursor = 0 // a new rebuild; only one with the same registry resumes
	}
	if _, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO search_index_state (type, fingerprint, complete, cursor_rid) VALUES (?, ?, ?, ?)
		ON CONFLICT (type) DO UPDATE SET fingerprint = excluded.fingerprint, complete = excluded.complete, cursor_rid = excluded.cursor_rid`),
		typ, fp, false, cursor); err != nil {
		return 0, false, err
	}
	var done int64
	for {
		n, last, err := s.reindexBatch(ctx, typ, cursor, opts.Batch)
		if err != nil {
			return done, true, err
		}
		done += int64(n)
		if n == 0 {
			_, err := s.w.ExecContext(ctx, s.d.rebind("UPDATE search_index_state SET complete = ? WHERE type = ?"), true, typ)
			return done, true, err
		}
		cursor = last
		if opts.Progress != nil {
			opts.Progress(typ, done, last)
		}
	}
}

// reindexBatch rebuilds the rows of up to limit live resources of typ after
// rid after, and records the last rid in the same transaction.
func (s *Store) reindexBatch(ctx context.Context, typ string, after int64, limit int) (int, int64, error) {
	n, last := 0, after
	err := s.Write(ctx, func(stx store.Tx) error {
		t := stx.(*tx)
		n, last = 0, after
		rows, err := t.tx.QueryContext(ctx, s.d.rebind(`SELECT r.rid, h.body FROM resources r JOIN history h ON h.seq = r.seq
			WHERE r.type = ? AND r.rid > ? AND r.deleted = ? ORDER BY r.rid LIMIT ?`), typ, after, false, limit)
		if err != nil {
			return err
		}
		type item struct {
			rid  int64
			body []byte
		}
		var items []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.rid, &it.body); err != nil {
				rows.Close()
				return err
			}
			items = append(items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range items {
			if err := t.index(ctx, it.rid, typ, it.body, false); err != nil {
				return err
			}
			n, last = n+1, it.rid
		}
		if n > 0 {
			_, err = t.exec(ctx, "UPDATE search_index_state SET cursor_rid = ? WHERE type = ?", last, typ)
		}
		return err
	})
	return n, last, err
}
