package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/search"
)

// The search index (migrations 0002_search.sql): every live resource has
// the rows that package search extracts from its current version, written
// in the transaction that writes the version. Rows name their parameter by
// a pid, one per (resource type, parameter code), kept in search_param.

// searchState is the part of a Store that the index and search need: the
// parameter ids and the insert statements.
type searchState struct {
	pids   map[string]map[string]int64 // type -> code -> pid
	params map[int64]paramRef          // pid -> its parameter

	extractors sync.Pool

	stmts map[insertKey]*sql.Stmt // SQLite: prepared multi-row inserts
	del   []*sql.Stmt             // SQLite: prepared deletes by rid, one per table
}

// paramRef is what a pid stands for.
type paramRef struct {
	Type  string
	Param *search.Param
}

// unindexed are the parameters read from the resources table instead of
// index rows: _id is resources.id, _lastUpdated is resources.ts.
var unindexed = map[string]bool{"_id": true, "_lastUpdated": true}

// indexable reports whether p gets index rows.
func indexable(p *search.Param) bool {
	return p.Expression != "" && p.Type != search.TypeSpecial && !unindexed[p.Code]
}

// initSearch gives every parameter of the registry its pid (inserting the
// ones the database does not know yet) and loads them.
func (s *Store) initSearch(ctx context.Context) error {
	known, err := s.loadPIDs(ctx)
	if err != nil {
		return fmt.Errorf("load search parameters: %w", err)
	}
	var missing [][2]string
	for _, typ := range searchTypes() {
		for _, p := range search.Params(typ) {
			if indexable(p) && known[typ][p.Code] == 0 {
				missing = append(missing, [2]string{typ, p.Code})
			}
		}
	}
	if len(missing) > 0 {
		if err := s.insertPIDs(ctx, missing); err != nil {
			return fmt.Errorf("register search parameters: %w", err)
		}
		if known, err = s.loadPIDs(ctx); err != nil {
			return err
		}
	}
	st := &s.search
	st.pids = known
	st.params = map[int64]paramRef{}
	for typ, m := range known {
		for code, pid := range m {
			if p, ok := search.Lookup(typ, code); ok {
				st.params[pid] = paramRef{Type: typ, Param: p}
			}
		}
	}
	st.stmts = map[insertKey]*sql.Stmt{}
	if err := s.initIndexState(ctx); err != nil {
		return fmt.Errorf("search index state: %w", err)
	}
	if s.d.pg {
		return nil
	}
	if err := s.prepareInserts(ctx); err != nil {
		return err
	}
	return s.prepareDeletes(ctx)
}

func (s *Store) loadPIDs(ctx context.Context) (map[string]map[string]int64, error) {
	rows, err := s.w.QueryContext(ctx, "SELECT pid, type, code FROM search_param")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var pid int64
		var typ, code string
		if err := rows.Scan(&pid, &typ, &code); err != nil {
			return nil, err
		}
		if out[typ] == nil {
			out[typ] = map[string]int64{}
		}
		out[typ][code] = pid
	}
	return out, rows.Err()
}

func (s *Store) insertPIDs(ctx context.Context, pairs [][2]string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := s.d.rebind("INSERT INTO search_param (type, code) VALUES (?, ?) ON CONFLICT (type, code) DO NOTHING")
	for _, p := range pairs {
		if _, err := tx.ExecContext(ctx, q, p[0], p[1]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// pid returns the id of parameter code of typ, 0 when it has none.
func (st *searchState) pid(typ, code string) int64 { return st.pids[typ][code] }

// indexTable describes one index table for inserts and deletes.
type indexTable struct {
	name string
	cols []string
}

// Index tables, in the order of their insert statements.
const (
	tString = iota
	tToken
	tDate
	tNumber
	tQuantity
	tReference
	tURI
	tComposite
	nTables
)

var indexTables = [nTables]indexTable{
	tString:    {"idx_string", []string{"pid", "rid", "norm", "exact"}},
	tToken:     {"idx_token", []string{"pid", "rid", "system", "code", "text"}},
	tDate:      {"idx_date", []string{"pid", "rid", "low", "high"}},
	tNumber:    {"idx_number", []string{"pid", "rid", "value", "low", "high"}},
	tQuantity:  {"idx_quantity", []string{"pid", "rid", "value", "system", "code", "unit", "cvalue", "ccode"}},
	tReference: {"idx_reference", []string{"pid", "rid", "target_type", "target_id", "url"}},
	tURI:       {"idx_uri", []string{"pid", "rid", "uri"}},
	tComposite: {"idx_composite", compositeCols()},
}

func compositeCols() []string {
	cols := []string{"pid", "rid"}
	for i := 1; i <= search.MaxCompositeParts; i++ {
		n := strconv.Itoa(i)
		cols = append(cols, "s"+n, "c"+n, "lo"+n, "hi"+n, "cc"+n, "cv"+n)
	}
	return cols
}

// maxRowsPerInsert bounds the rows of one multi-row INSERT.
const maxRowsPerInsert = 32

type insertKey struct{ table, rows int }

func insertSQL(d dialect, t int, rows int) string {
	tb := indexTables[t]
	var b strings.Builder
	// On SQLite, OR IGNORE (a row equal to one already there adds nothing)
	// also means the statement can never stop half-way, so SQLite keeps no
	// statement journal for it: inside the savepoints of group commit that
	// journal, a copy of every page the insert touches, was most of the cost.
	verb := "INSERT INTO "
	if !d.pg {
		verb = "INSERT OR IGNORE INTO "
	}
	b.WriteString(verb + tb.name + " (" + strings.Join(tb.cols, ", ") + ") VALUES ")
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(tb.cols)), ", ") + ")"
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return d.rebind(b.String())
}

func (s *Store) prepareDeletes(ctx context.Context) error {
	for _, tb := range indexTables {
		st, err := s.w.PrepareContext(ctx, "DELETE FROM "+tb.name+" WHERE rid = ?")
		if err != nil {
			return fmt.Errorf("prepare index delete: %w", err)
		}
		s.search.del = append(s.search.del, st)
	}
	return nil
}

// prepareInserts prepares, on SQLite, the multi-row insert of every table
// for every row count up to maxRowsPerInsert. They must exist before the
// first write: the single writer connection is busy inside a transaction,
// so nothing can be prepared on it then.
func (s *Store) prepareInserts(ctx context.Context) error {
	for t := range nTables {
		for n := 1; n <= maxRowsPerInsert; n++ {
			p, err := s.w.PrepareContext(ctx, insertSQL(s.d, t, n))
			if err != nil {
				return fmt.Errorf("prepare index insert: %w", err)
			}
			s.search.stmts[insertKey{t, n}] = p
		}
	}
	return nil
}

func (st *searchState) close() {
	for _, p := range st.stmts {
		p.Close()
	}
	st.stmts = nil
	for _, p := range st.del {
		p.Close()
	}
	st.del = nil
}

// index replaces the index rows of resource rid with those of body, the
// version just written; a nil body (a deletion) only removes them. fresh
// says that rid is new, so there is nothing to remove.
//
// New rows are buffered in the transaction and inserted in multi-row
// statements when a table has a statement's worth, or by flushIndex before
// the transaction commits or reads the index: writing a batch of resources
// then costs a few large inserts rather than several small ones per
// resource.
func (t *tx) index(ctx context.Context, rid int64, typ string, body []byte, fresh bool) error {
	if !fresh {
		if err := t.flushIndex(ctx); err != nil {
			return err
		}
		if err := t.unindex(ctx, rid); err != nil {
			return err
		}
	}
	if body == nil {
		return nil
	}
	st := &t.s.search
	rows := t.pre
	t.pre = nil
	if rows == nil {
		x, _ := st.extractors.Get().(*search.Extractor)
		if x == nil {
			x = search.NewExtractor()
		}
		defer st.extractors.Put(x)
		var err error
		if rows, err = x.Extract(typ, body); err != nil {
			return fmt.Errorf("index %s: %w", typ, err)
		}
	}
	t.idx.build(st, typ, rid, rows)
	for tbl := range t.idx.args {
		if len(t.idx.args[tbl]) >= maxRowsPerInsert*len(indexTables[tbl].cols) {
			if err := t.flushTable(ctx, tbl, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushIndex inserts every buffered index row. The transaction runs it
// before commit; searches inside a transaction run it first, so that they
// see the transaction's own writes.
func (t *tx) flushIndex(ctx context.Context) error {
	for tbl := range t.idx.args {
		if err := t.flushTable(ctx, tbl, true); err != nil {
			return err
		}
	}
	return nil
}

// flushTable inserts the buffered rows of table tbl in statements of
// maxRowsPerInsert rows; with all false, a remainder smaller than that
// stays buffered.
func (t *tx) flushTable(ctx context.Context, tbl int, all bool) error {
	width := len(indexTables[tbl].cols)
	args := t.idx.args[tbl]
	for len(args) >= width && (all || len(args) >= maxRowsPerInsert*width) {
		n := min(len(args)/width, maxRowsPerInsert)
		chunk := args[:n*width]
		var err error
		if t.s.d.pg {
			_, err = t.tx.ExecContext(ctx, insertSQL(t.s.d, tbl, n), chunk...)
		} else {
			_, err = t.tx.StmtContext(ctx, t.s.search.stmts[insertKey{tbl, n}]).ExecContext(ctx, chunk...)
		}
		if err != nil {
			return fmt.Errorf("insert %s: %w", indexTables[tbl].name, err)
		}
		args = args[n*width:]
	}
	t.idx.args[tbl] = append(t.idx.args[tbl][:0], args...)
	return nil
}

// unindex removes every index row of rid.
func (t *tx) unindex(ctx context.Context, rid int64) error {
	st := &t.s.search
	for i, tb := range indexTables {
		var err error
		if t.s.d.pg {
			_, err = t.tx.ExecContext(ctx, "DELETE FROM "+tb.name+" WHERE rid = $1", rid)
		} else {
			_, err = t.tx.StmtContext(ctx, st.del[i]).ExecContext(ctx, rid)
		}
		if err != nil {
			return fmt.Errorf("unindex %s: %w", tb.name, err)
		}
	}
	return nil
}

// rowBuffer holds the flattened insert arguments of one resource, per
// table.
type rowBuffer struct {
	args [nTables][]any
}

func (b *rowBuffer) add(tbl int, vals ...any) { b.args[tbl] = append(b.args[tbl], vals...) }

// build converts extracted rows into insert arguments, dropping rows of
// parameters without a pid (_id and _lastUpdated, read from resources).
func (b *rowBuffer) build(st *searchState, typ string, rid int64, rows *search.Rows) {
	pids := st.pids[typ]
	for _, r := range rows.Strings {
		if pid := pids[r.Param]; pid != 0 {
			b.add(tString, pid, rid, r.Norm, r.Exact)
		}
	}
	for _, r := range rows.Tokens {
		if pid := pids[r.Param]; pid != 0 {
			b.add(tToken, pid, rid, r.System, r.Code, r.Text)
		}
	}
	for _, r := range rows.Dates {
		if pid := pids[r.Param]; pid != 0 {
			b.add(tDate, pid, rid, r.Low, r.High)
		}
	}
	for _, r := range rows.Numbers {
		if pid := pids[r.Param]; pid != 0 {
			b.add(tNumber, pid, rid, search.Finite(r.Value, r.Low, r.High), r.Low, r.High)
		}
	}
	for _, r := range rows.Quantities {
		if pid := pids[r.Param]; pid != 0 {
			b.add(tQuantity, pid, rid, search.Finite(r.Value, r.Low, r.High), r.System, r.Code, r.Unit,
				search.Finite(r.Canonical.Value, r.Canonical.Low, r.Canonical.High), r.CanonicalCode)
		}
	}
	for _, r := range rows.References {
		if pid := pids[r.Param]; pid != 0 {
			typ, id := r.Type, r.ID
			if r.URL != "" {
				typ, id = "", "" // absolute: matched by URL only
			}
			b.add(tReference, pid, rid, typ, id, r.URL)
		}
	}
	for _, r := range rows.URIs {
		if pid := pids[r.Param]; pid != 0 {
			b.add(tURI, pid, rid, r.URI)
		}
	}
	for _, r := range rows.Composites {
		if pid := pids[r.Param]; pid != 0 && len(r.Parts) <= search.MaxCompositeParts {
			b.add(tComposite, pid, rid)
			for i := 0; i < search.MaxCompositeParts; i++ {
				var c search.CompositeCell
				if i < len(r.Parts) {
					c = search.CellOf(&r.Parts[i])
				}
				b.add(tComposite, c.System, c.Code, c.Low, c.High, c.CanonicalCode, c.CanonicalValue)
			}
		}
	}
}

// preparedIndex is what PrepareIndex leaves in resource.Resource.Prepared.
type preparedIndex struct {
	typ  string
	rows *search.Rows
}

// PrepareIndex extracts r's search index rows ahead of its write, so that
// the work runs in the caller's goroutine (loader workers, HTTP handlers)
// rather than inside the write transaction, which on SQLite is one
// goroutine for the whole server. The rows do not depend on the version id
// or timestamp the write assigns. Call it after the last change to r.
func PrepareIndex(r *resource.Resource) error {
	rows, err := search.Extract(r.Type, r.Render(1, time.Unix(0, 0)))
	if err != nil {
		return fmt.Errorf("index %s: %w", r.Type, err)
	}
	r.Prepared = &preparedIndex{typ: r.Type, rows: rows}
	return nil
}

// PrepareIndex is the package function PrepareIndex as a method, so that
// callers holding a store interface can find it.
func (s *Store) PrepareIndex(r *resource.Resource) error { return PrepareIndex(r) }

// prepared returns the rows PrepareIndex left in r, if they are still r's.
func prepared(r *resource.Resource) *search.Rows {
	if p, ok := r.Prepared.(*preparedIndex); ok && p.typ == r.Type {
		return p.rows
	}
	return nil
}
