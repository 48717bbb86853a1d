package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/store"
)

// SearchSpec is one search to run: a parsed query, the restrictions of the
// caller's grant, an optional compartment, and the page wanted.
type SearchSpec struct {
	Query *search.Query
	// Restrict, when not nil, is a list of queries of which every match
	// must also satisfy at least one (query-restricted scopes). An empty
	// non-nil list matches nothing.
	Restrict []*search.Query
	// CompartmentType and CompartmentID limit matches to a compartment,
	// e.g. Patient/123.
	CompartmentType, CompartmentID string
	// Count is the page size; 0 returns no matches (for _summary=count).
	Count int
	// Cursor continues from the Next or Prev of an earlier page of the
	// same search; empty starts at the first page.
	Cursor string
	// Total asks for the number of all matches.
	Total bool
}

// Match is one resource of a page.
type Match struct {
	RID int64
	store.Version
}

// SearchPage is one page of results.
type SearchPage struct {
	Matches []Match
	// Total is the number of all matches, or -1 when not computed.
	Total int
	// Next and Prev are the cursors of the following and preceding pages;
	// empty when there is none.
	Next, Prev string
}

// Search runs a search (R4 search.html) on the current versions of live
// resources. Pages are keyset-based: a cursor holds the sort key of the
// row it continues from, so pages neither skip nor repeat resources when
// other resources are written between them.
func (s *Store) Search(ctx context.Context, spec SearchSpec) (*SearchPage, error) {
	return s.runSearch(ctx, s.r, spec)
}

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) runSearch(ctx context.Context, db queryer, spec SearchSpec) (*SearchPage, error) {
	q := spec.Query
	keys := sortKeys(q)
	c := &compiler{s: s, now: s.now()}
	m, err := c.match(q.Type, q.Where, spec)
	if err != nil {
		return nil, err
	}
	window := m.window
	if len(keys) > 0 {
		window = nil // _sort decides the order
	}
	var cur *cursor
	if window != nil {
		cur, err = decodeWindowCursor(spec.Cursor)
	} else {
		cur, err = decodeCursor(spec.Cursor, keys)
	}
	if err != nil {
		return nil, err
	}
	page := &SearchPage{Total: -1}
	if spec.Count > 0 {
		var rows []pageRow
		enc := func(r pageRow, backward bool) string { return encodeCursor(keys, r, backward) }
		if window != nil {
			rows, err = c.windowPage(ctx, db, window, cur, spec.Count+1)
			enc = encodeWindowCursor
		} else {
			rows, err = c.page(ctx, db, m, keys, cur, spec.Count)
		}
		if err != nil {
			return nil, err
		}
		if err := s.fillPage(ctx, db, page, rows, enc, cur, spec.Count); err != nil {
			return nil, err
		}
	}
	switch {
	case spec.Total:
		if page.Total, err = c.count(ctx, db, m); err != nil {
			return nil, err
		}
	case cur == nil && spec.Count > 0 && page.Next == "":
		page.Total = len(page.Matches) // the first page holds them all
	}
	return page, nil
}

// matchSQL is the compiled criteria: FROM and WHERE of a statement whose
// driving alias is t0, selecting t0.rid (with duplicates when distinct).
type matchSQL struct {
	from     string
	where    []string
	args     []any
	distinct bool
	ordered  bool // t0 yields rids in order (no sort needed for rid order)
	// window is set when the criteria are one date interval alone, which
	// a search without _sort pages in date order (search_window.go).
	window *dateWindow
}

// match compiles where, the compartment and the restrictions of spec for
// resources of typ.
func (c *compiler) match(typ string, where []search.Clause, spec SearchSpec) (*matchSQL, error) {
	var sets []ridSet
	merged := map[int]bool{}
	intervals := dateIntervals(where)
	for _, code := range sortedKeys(intervals) {
		bs := intervals[code]
		for _, b := range bs {
			merged[b.index] = true
		}
		sets = append(sets, c.intervalSet(where[bs[0].index].Types, where, bs))
	}
	for i := range where {
		if merged[i] {
			continue
		}
		set, err := c.clause(typ, &where[i])
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	if spec.CompartmentType != "" {
		set, err := c.compartment(typ, spec.CompartmentType, spec.CompartmentID)
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	if spec.Restrict != nil {
		set, err := c.restriction(typ, spec.Restrict)
		if err != nil {
			return nil, err
		}
		sets = append(sets, set)
	}
	m := c.assemble(typ, sets)
	if len(sets) == 1 {
		m.window = sets[0].window
	}
	return m, nil
}

// restriction is the union of the match sets of qs.
func (c *compiler) restriction(typ string, qs []*search.Query) (ridSet, error) {
	if len(qs) == 0 {
		return never, nil
	}
	var parts []string
	var args []any
	for _, q := range qs {
		if q.Type != typ {
			return ridSet{}, fmt.Errorf("sqlstore: restriction on %s for a search on %s", q.Type, typ)
		}
		m, err := c.match(typ, q.Where, SearchSpec{})
		if err != nil {
			return ridSet{}, err
		}
		parts = append(parts, "SELECT t0.rid FROM "+m.from+" WHERE "+strings.Join(m.where, " AND "))
		args = append(args, m.args...)
	}
	return ridSet{sub: strings.Join(parts, " UNION "), args: args, rank: rankRestrict}, nil
}

// assemble picks the driving set and joins the others to it by rid.
func (c *compiler) assemble(typ string, sets []ridSet) *matchSQL {
	best := -1
	for i, s := range sets {
		if !s.negate && (best < 0 || s.rank < sets[best].rank) {
			best = i
		}
	}
	m := &matchSQL{}
	if best < 0 {
		m.from = "resources t0"
		m.where = []string{"t0.type = ?", "t0.deleted = ?"}
		m.args = []any{typ, false}
		m.ordered = true
	} else {
		d := sets[best]
		if d.sub != "" {
			m.from = "(" + d.sub + ") t0"
			m.where = []string{"1 = 1"}
		} else {
			m.from = d.table + " t0"
			m.where = []string{expand(d.cond, "t0")}
			m.ordered = d.ordered
		}
		m.args = append(m.args, d.args...)
		m.distinct = d.table != "resources"
	}
	for i, s := range sets {
		if i == best {
			continue
		}
		not := ""
		if s.negate {
			not = "NOT "
		}
		if probe := probeOf(s); probe != nil && s.sub != "" {
			cond, args := probe(c, "t0.rid")
			m.where = append(m.where, cond)
			m.args = append(m.args, args...)
			continue
		}
		if s.sub != "" {
			m.where = append(m.where, "t0.rid "+not+"IN ("+s.sub+")")
		} else {
			a := c.nextAlias()
			m.where = append(m.where, not+"EXISTS (SELECT 1 FROM "+s.table+" "+a+" WHERE "+a+".rid = t0.rid AND "+expand(s.cond, a)+")")
		}
		m.args = append(m.args, s.args...)
	}
	return m
}

// count counts the distinct matches.
func (c *compiler) count(ctx context.Context, db queryer, m *matchSQL) (int, error) {
	q := "SELECT COUNT(DISTINCT t0.rid) FROM " + m.from + " WHERE " + strings.Join(m.where, " AND ")
	var n int
	err := db.QueryRowContext(ctx, c.s.d.rebind(q), m.args...).Scan(&n)
	return n, err
}

// pageRow is a match with its sort key values.
type pageRow struct {
	rid  int64
	keys []any
}

// page selects up to count+1 rows after (or before) the cursor.
func (c *compiler) page(ctx context.Context, db queryer, m *matchSQL, keys []sortKey, cur *cursor, count int) ([]pageRow, error) {
	backward := cur != nil && cur.backward
	q, args := c.pageSQL(m, keys, cur, backward, count+1)
	rows, err := c.s.query(ctx, db, c.s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []pageRow
	for rows.Next() {
		r := pageRow{keys: make([]any, 2*len(keys))}
		dest := []any{&r.rid}
		for i, k := range keys {
			r.keys[2*i] = new(int64)
			r.keys[2*i+1] = k.scanDest()
			dest = append(dest, r.keys[2*i], r.keys[2*i+1])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		for i := range r.keys {
			r.keys[i] = deref(r.keys[i])
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// pageSQL builds the page statement. Without sort keys it orders by rid,
// which a driving key range on an equality already yields; with them, the
// keys are computed per match and the page taken from their order.
func (c *compiler) pageSQL(m *matchSQL, keys []sortKey, cur *cursor, backward bool, limit int) (string, []any) {
	args := append([]any{}, m.args...)
	where := strings.Join(m.where, " AND ")
	if len(keys) == 0 {
		dir, op := "ASC", ">"
		if backward {
			dir, op = "DESC", "<"
		}
		if cur != nil {
			where += " AND t0.rid " + op + " ?"
			args = append(args, cur.rid)
		}
		sel := "SELECT t0.rid"
		if m.distinct {
			sel = "SELECT DISTINCT t0.rid"
		}
		return sel + " FROM " + m.from + " WHERE " + where + " ORDER BY t0.rid " + dir + " LIMIT " + strconv.Itoa(limit), args
	}
	inner := "SELECT DISTINCT t0.rid FROM " + m.from + " WHERE " + where
	var cols, order []string
	var keyArgs []any // the key expressions precede the inner query in the text
	for i, k := range keys {
		n := strconv.Itoa(i)
		expr, kargs := c.sortExpr(k, "m.rid")
		keyArgs = append(keyArgs, kargs...)
		cols = append(cols, "("+expr+") AS k"+n)
		desc := k.desc != backward
		dir := "ASC"
		if desc {
			dir = "DESC"
		}
		mdir := "ASC"
		if backward {
			mdir = "DESC"
		}
		order = append(order, "km"+n+" "+mdir, "kv"+n+" "+dir)
	}
	rdir := "ASC"
	if backward {
		rdir = "DESC"
	}
	order = append(order, "rid "+rdir)
	args = append(keyArgs, args...)
	mid := "SELECT m.rid, " + strings.Join(cols, ", ") + " FROM (" + inner + ") m"
	var outCols []string
	for i, k := range keys {
		n := strconv.Itoa(i)
		outCols = append(outCols, "CASE WHEN k"+n+" IS NULL THEN 1 ELSE 0 END AS km"+n,
			"COALESCE(k"+n+", "+k.zero()+") AS kv"+n)
	}
	q := "SELECT rid, " + strings.Join(outCols, ", ") + " FROM (" + mid + ") x"
	outer := "SELECT * FROM (" + q + ") y"
	if cur != nil {
		cond, cargs := keysetCond(keys, cur, backward)
		outer += " WHERE " + cond
		args = append(args, cargs...)
	}
	outer += " ORDER BY " + strings.Join(order, ", ") + " LIMIT " + strconv.Itoa(limit)
	return outer, args
}

// keysetCond selects the rows strictly after the cursor in the order of
// keys (before it when backward): a lexicographic comparison of (km0, kv0,
// km1, kv1, ..., rid), each in its direction.
func keysetCond(keys []sortKey, cur *cursor, backward bool) (string, []any) {
	type col struct {
		name string
		desc bool
		val  any
	}
	var cols []col
	for i, k := range keys {
		n := strconv.Itoa(i)
		cols = append(cols, col{"km" + n, false, cur.keys[2*i]}, col{"kv" + n, k.desc, cur.keys[2*i+1]})
	}
	cols = append(cols, col{"rid", false, cur.rid})
	var ors []string
	var args []any
	for i := range cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j].name+" = ?")
			args = append(args, cols[j].val)
		}
		op := ">"
		if cols[i].desc != backward {
			op = "<"
		}
		ands = append(ands, cols[i].name+" "+op+" ?")
		args = append(args, cols[i].val)
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// fillPage loads the versions of the page's rows and sets its cursors.
func (s *Store) fillPage(ctx context.Context, db queryer, page *SearchPage, rows []pageRow, enc func(pageRow, bool) string, cur *cursor, count int) error {
	backward := cur != nil && cur.backward
	more := len(rows) > count
	if more {
		rows = rows[:count]
	}
	if backward {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	rids := make([]int64, len(rows))
	for i, r := range rows {
		rids[i] = r.rid
	}
	vs, err := s.loadVersions(ctx, db, rids)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if v, ok := vs[r.rid]; ok {
			page.Matches = append(page.Matches, Match{RID: r.rid, Version: *v})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	first, last := rows[0], rows[len(rows)-1]
	switch {
	case backward:
		page.Next = enc(last, false)
		if more {
			page.Prev = enc(first, true)
		}
	default:
		if more {
			page.Next = enc(last, false)
		}
		if cur != nil {
			page.Prev = enc(first, true)
		}
	}
	return nil
}

// loadVersions reads the current versions of rids.
func (s *Store) loadVersions(ctx context.Context, db queryer, rids []int64) (map[int64]*store.Version, error) {
	out := make(map[int64]*store.Version, len(rids))
	for len(rids) > 0 {
		n := min(len(rids), 500)
		chunk := rids[:n]
		rids = rids[n:]
		args := make([]any, n)
		for i, r := range chunk {
			args[i] = r
		}
		q := `SELECT r.rid, r.type, r.id, r.vid, r.ts, h.method, h.body FROM resources r JOIN history h ON h.seq = r.seq
			WHERE r.rid` + inList(n) + ` AND r.deleted = ?`
		rows, err := s.query(ctx, db, s.d.rebind(q), append(args, false)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var rid, ts int64
			v := &store.Version{}
			if err := rows.Scan(&rid, &v.Type, &v.ID, &v.VersionID, &ts, &v.Method, &v.Body); err != nil {
				rows.Close()
				return nil, err
			}
			v.LastUpdated = fromMicros(ts)
			out[rid] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sortKey is one _sort key compiled for its parameter type.
type sortKey struct {
	param *search.Param
	desc  bool
	typ   string // resource type searched
}

func sortKeys(q *search.Query) []sortKey {
	var out []sortKey
	for _, k := range q.Sort {
		out = append(out, sortKey{param: k.Param, desc: k.Descending, typ: q.Type})
	}
	return out
}

// kind is how a key's values are compared: "i" integers, "f" floats, "s"
// strings.
func (k sortKey) kind() string {
	switch k.param.Code {
	case "_lastUpdated":
		return "i"
	case "_id":
		return "s"
	}
	switch k.param.Type {
	case search.TypeDate:
		return "i"
	case search.TypeNumber, search.TypeQuantity:
		return "f"
	}
	return "s"
}

func (k sortKey) zero() string {
	if k.kind() == "s" {
		return "''"
	}
	return "0"
}

func (k sortKey) scanDest() any {
	switch k.kind() {
	case "i":
		return new(int64)
	case "f":
		return new(float64)
	}
	return new(string)
}

func deref(p any) any {
	switch v := p.(type) {
	case *int64:
		return *v
	case *float64:
		return *v
	case *string:
		return *v
	}
	return p
}

// sortExpr is the value a resource sorts by: the smallest of its values
// ascending, the largest descending (R4 search.html#sort leaves multiple
// values to the server); NULL when it has none.
func (c *compiler) sortExpr(k sortKey, rid string) (string, []any) {
	switch k.param.Code {
	case "_id":
		return "SELECT id FROM resources WHERE rid = " + rid, nil
	case "_lastUpdated":
		return "SELECT ts FROM resources WHERE rid = " + rid, nil
	}
	agg := "MIN"
	if k.desc {
		agg = "MAX"
	}
	var col string
	switch k.param.Type {
	case search.TypeString:
		col = "norm"
	case search.TypeToken:
		col = "code"
	case search.TypeDate:
		col = "low"
		if k.desc {
			col = "high"
		}
	case search.TypeNumber, search.TypeQuantity:
		col = "value"
	case search.TypeReference:
		col = "target_type || '/' || target_id || url"
	case search.TypeURI:
		col = "uri"
	}
	pid := c.s.search.pid(k.typ, k.param.Code)
	// +pid keeps SQLite from answering MIN/MAX from the (pid, value)
	// key, which would scan the parameter's rows until one has this rid;
	// the (rid, pid) index finds the resource's few rows directly.
	return "SELECT " + agg + "(" + col + ") FROM " + tableOf(k.param.Type) + " WHERE rid = " + rid + " AND +pid = ?", []any{pid}
}

// errBadCursor is the 400 for a cursor this server did not issue for this
// search.
func errBadCursor(raw string) error {
	return fhir.Invalid("_cursor=%q is not a position of this search; start again from the first page", raw)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
