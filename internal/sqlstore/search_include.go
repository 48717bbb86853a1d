package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/store"
)

// IncludeSpec selects the resources a page brings along (R4
// search.html#include).
type IncludeSpec struct {
	Includes, RevIncludes []search.Include
	// Allow decides, per resource type, whether included resources of that
	// type may be returned and which restriction queries they must match
	// (nil: none). A type it refuses is left out.
	Allow func(ctx context.Context, typ string) (ok bool, restrict []*search.Query, err error)
	// Limit caps the included resources (default 1000).
	Limit int
}

// maxIncludeRounds bounds :iterate.
const maxIncludeRounds = 4

// Includes returns the resources that _include and _revinclude add to the
// matches of a page, each once and none of the matches again. :iterate
// repeats on what was included, up to maxIncludeRounds rounds. truncated
// reports that Limit cut the list.
func (s *Store) Includes(ctx context.Context, matches []Match, spec IncludeSpec) (out []Match, truncated bool, err error) {
	if spec.Limit <= 0 {
		spec.Limit = 1000
	}
	seen := map[int64]bool{}
	for _, m := range matches {
		seen[m.RID] = true
	}
	frontier := matches
	allowed := map[string]*typeFilter{}
	for round := 0; round < maxIncludeRounds && len(frontier) > 0; round++ {
		var cand []int64
		for _, inc := range spec.Includes {
			if round == 0 || inc.Iterate {
				rids, err := s.forward(ctx, frontier, inc)
				if err != nil {
					return nil, false, err
				}
				cand = append(cand, rids...)
			}
		}
		for _, inc := range spec.RevIncludes {
			if round == 0 || inc.Iterate {
				rids, err := s.reverse(ctx, frontier, inc)
				if err != nil {
					return nil, false, err
				}
				cand = append(cand, rids...)
			}
		}
		var fresh []int64
		for _, r := range cand {
			if !seen[r] {
				seen[r] = true
				fresh = append(fresh, r)
			}
		}
		vs, err := s.loadVersions(ctx, s.r, fresh)
		if err != nil {
			return nil, false, err
		}
		var next []Match
		for _, r := range fresh {
			v, ok := vs[r]
			if !ok {
				continue
			}
			pass, err := s.includeAllowed(ctx, allowed, spec, r, v.Type)
			if err != nil {
				return nil, false, err
			}
			if !pass {
				continue
			}
			if len(out) == spec.Limit {
				return out, true, nil
			}
			m := Match{RID: r, Version: *v}
			out = append(out, m)
			next = append(next, m)
		}
		frontier = next
	}
	return out, false, nil
}

// typeFilter is the cached decision of Allow for one type.
type typeFilter struct {
	ok       bool
	restrict []*search.Query
}

func (s *Store) includeAllowed(ctx context.Context, cache map[string]*typeFilter, spec IncludeSpec, rid int64, typ string) (bool, error) {
	f := cache[typ]
	if f == nil {
		f = &typeFilter{ok: true}
		if spec.Allow != nil {
			var err error
			if f.ok, f.restrict, err = spec.Allow(ctx, typ); err != nil {
				return false, err
			}
		}
		cache[typ] = f
	}
	if !f.ok {
		return false, nil
	}
	if f.restrict == nil {
		return true, nil
	}
	c := &compiler{s: s, now: s.now()}
	set, err := c.restriction(typ, f.restrict)
	if err != nil {
		return false, err
	}
	var one int
	err = s.r.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM ("+set.sub+") x WHERE x.rid = ?"), append(set.args, rid)...).Scan(&one)
	return one > 0, err
}

// forward follows the references of param from the frontier resources of
// inc.Source (every type for "*") to live resources.
func (s *Store) forward(ctx context.Context, frontier []Match, inc search.Include) ([]int64, error) {
	var rids, pids []any
	for _, m := range frontier {
		if inc.Source == "" || m.Type == inc.Source {
			rids = append(rids, m.RID)
		}
	}
	if len(rids) == 0 {
		return nil, nil
	}
	q := "SELECT t.rid FROM idx_reference r JOIN resources t ON t.type = r.target_type AND t.id = r.target_id AND t.deleted = ? WHERE r.rid" + inList(len(rids))
	args := append([]any{false}, rids...)
	if inc.Param != nil {
		pids = s.refPIDs(inc.Source, inc.Param.Code)
		if len(pids) == 0 {
			return nil, nil
		}
		q += " AND r.pid" + inList(len(pids))
		args = append(args, pids...)
	}
	if inc.Target != "" {
		q += " AND r.target_type = ?"
		args = append(args, inc.Target)
	}
	return s.queryRIDs(ctx, q, args)
}

// reverse finds live resources of inc.Source whose param points at a
// frontier resource (of type inc.Target when set).
func (s *Store) reverse(ctx context.Context, frontier []Match, inc search.Include) ([]int64, error) {
	byType := map[string][]string{}
	for _, m := range frontier {
		if inc.Target == "" || m.Type == inc.Target {
			byType[m.Type] = append(byType[m.Type], m.ID)
		}
	}
	var out []int64
	for typ, ids := range byType {
		var pids []any
		if inc.Param != nil {
			pids = s.refPIDs(inc.Source, inc.Param.Code)
		} else {
			pids = s.refPIDs(inc.Source, "")
		}
		if len(pids) == 0 {
			continue
		}
		args := append([]any{}, pids...)
		args = append(args, typ)
		for _, id := range ids {
			args = append(args, id)
		}
		q := "SELECT DISTINCT rid FROM idx_reference WHERE pid" + inList(len(pids)) + " AND target_type = ? AND target_id" + inList(len(ids))
		rids, err := s.queryRIDs(ctx, q, args)
		if err != nil {
			return nil, err
		}
		out = append(out, rids...)
	}
	return out, nil
}

// refPIDs are the pids of reference parameter code on typ; an empty code
// (or typ) means every reference parameter of typ (of every type).
func (s *Store) refPIDs(typ, code string) []any {
	var out []any
	for pid, p := range s.search.params {
		if p.Param.Type == search.TypeReference && (typ == "" || p.Type == typ) && (code == "" || p.Param.Code == code) {
			out = append(out, pid)
		}
	}
	return out
}

func (s *Store) queryRIDs(ctx context.Context, q string, args []any) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("include: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// MatchTx runs the criteria of a conditional interaction inside the write
// transaction tx (which must come from this Store's Write): the live
// resources of q.Type matching q.Where, at most limit. Running inside the
// transaction makes the check and the write that depends on it atomic, and
// sees the transaction's own earlier writes.
func (s *Store) MatchTx(ctx context.Context, stx store.Tx, q *search.Query, limit int) ([]*store.Version, error) {
	t, ok := stx.(*tx)
	if !ok {
		return nil, fmt.Errorf("sqlstore: MatchTx needs a transaction of this store, got %T", stx)
	}
	if err := t.flushIndex(ctx); err != nil {
		return nil, err
	}
	page, err := s.runSearch(ctx, t.tx, SearchSpec{Query: &search.Query{Type: q.Type, Where: q.Where}, Count: limit})
	if err != nil {
		return nil, err
	}
	out := make([]*store.Version, len(page.Matches))
	for i := range page.Matches {
		out[i] = &page.Matches[i].Version
	}
	return out, nil
}

var _ = strings.Join
