package sqlstore

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/search"
)

// Compiling a search (package search's AST) to SQL. Each clause becomes a
// set of rids: a condition on one index table (a leaf), or a subquery for
// chains, reverse chains, compartments and restrictions. The statement
// drives from the most selective positive set and probes the others by
// rid, which every index table has an index for. SQL is written with ?
// placeholders and rebound by the dialect at the end.

// ridSet is the compiled form of one criterion.
type ridSet struct {
	// table and cond describe a leaf: rows of table (aliased by the
	// compiler) satisfying cond; cond holds the alias as "{a}".
	table string
	cond  string
	// sub is a SELECT of a single rid column, when the set is no leaf.
	sub  string
	args []any
	// negate: the criterion holds for resources NOT in the set.
	negate bool
	// rank orders candidates for driving the statement: lower is likely
	// more selective.
	rank int
	// ordered: scanning the leaf's key index yields rids in order, so a
	// page needs no sort.
	ordered bool
	// probe, when set, is the correlated form of a subquery set: a
	// condition that the rid expression it is given is in the set, checked
	// through indexes from that rid outwards. A statement that does not
	// drive from the set uses it instead of materializing the whole set.
	probe func(c *compiler, rid string) (string, []any)
	// window, when set, lets a search on this set alone be paged in date
	// order (search_window.go).
	window *dateWindow
}

// probeOf returns a correlated membership test for a positive set: the
// leaf's table searched by rid, or the set's own probe; nil when neither
// applies.
func probeOf(set ridSet) func(c *compiler, rid string) (string, []any) {
	switch {
	case set.negate:
		return nil
	case set.probe != nil:
		return set.probe
	case set.sub == "" && set.table != "":
		return func(c *compiler, rid string) (string, []any) {
			a := c.nextAlias()
			return "EXISTS (SELECT 1 FROM " + set.table + " " + a + " WHERE " + a + ".rid = " + rid + " AND " + expand(set.cond, a) + ")", set.args
		}
	}
	return nil
}

// Driver ranks.
const (
	rankID = iota
	rankCompartment
	rankEqual // reference, token code, uri: one key
	rankExact
	rankPrefix
	rankRange
	rankChain
	rankHas
	rankScan // system-only tokens, :text, :contains, :above
	rankRestrict
	rankPresent
)

// compiler compiles the clauses of one statement.
type compiler struct {
	s     *Store
	now   time.Time
	alias int
}

func (c *compiler) nextAlias() string {
	c.alias++
	return "a" + strconv.Itoa(c.alias)
}

// expand replaces the {a} alias marker of a leaf condition.
func expand(cond, alias string) string { return strings.ReplaceAll(cond, "{a}", alias) }

// asSubquery renders any set as SELECT rid: a leaf becomes a query on its
// table; a negated set selects the live resources of types outside it.
func (c *compiler) asSubquery(set ridSet, types []string) (string, []any) {
	var q string
	if set.sub != "" {
		q = set.sub
	} else {
		a := c.nextAlias()
		q = "SELECT " + a + ".rid FROM " + set.table + " " + a + " WHERE " + expand(set.cond, a)
	}
	if !set.negate {
		return q, set.args
	}
	a := c.nextAlias()
	args := append(append([]any{}, typeArgs(types)...), false)
	args = append(args, set.args...)
	return "SELECT " + a + ".rid FROM resources " + a + " WHERE " + a + ".type" + inList(len(types)) +
		" AND " + a + ".deleted = ? AND " + a + ".rid NOT IN (" + q + ")", args
}

// clause compiles one clause of a search on typ.
func (c *compiler) clause(typ string, cl *search.Clause) (ridSet, error) {
	if cl.Has != nil {
		return c.has(typ, cl)
	}
	set, err := c.leaf(cl.Types, cl)
	if err != nil || len(cl.Chain) == 0 {
		return set, err
	}
	// Follow the chain backwards: resources whose reference points at a
	// resource of the inner set (search.html#chaining).
	probe := probeOf(set)
	inner, args := c.asSubquery(set, cl.Types)
	for i := len(cl.Chain) - 1; i >= 0; i-- {
		hop := cl.Chain[i]
		from := []string{typ}
		if i > 0 {
			from = cl.Chain[i-1].Types
		}
		pids := c.pids(from, hop.Param.Code)
		if len(pids) == 0 {
			return ridSet{sub: "SELECT 0 AS rid WHERE 1 = 0"}, nil
		}
		x, tr, ref := c.nextAlias(), c.nextAlias(), c.nextAlias()
		q := "SELECT " + ref + ".rid FROM (" + inner + ") " + x + " CROSS JOIN resources " + tr + " CROSS JOIN idx_reference " + ref +
			" WHERE " + tr + ".rid = " + x + ".rid AND " + ref + ".target_id = " + tr + ".id AND " + ref + ".target_type = " + tr + ".type AND " +
			ref + ".pid" + inList(len(pids))
		args = append(args, pids...)
		inner = q
		probe = chainProbe(probe, pids)
	}
	return ridSet{sub: inner, args: args, rank: rankChain, probe: probe}, nil
}

// chainProbe tests that a resource points, through one of the reference
// parameters pids, at a resource for which next holds.
func chainProbe(next func(*compiler, string) (string, []any), pids []any) func(*compiler, string) (string, []any) {
	if next == nil {
		return nil
	}
	return func(c *compiler, rid string) (string, []any) {
		ref, tr := c.nextAlias(), c.nextAlias()
		inner, iargs := next(c, tr+".rid")
		args := append(append([]any{}, pids...), iargs...)
		return "EXISTS (SELECT 1 FROM idx_reference " + ref + " CROSS JOIN resources " + tr + " WHERE " + ref + ".rid = " + rid +
			" AND " + ref + ".pid" + inList(len(pids)) + " AND " + tr + ".type = " + ref + ".target_type AND " + tr + ".id = " +
			ref + ".target_id AND " + inner + ")", args
	}
}

// has compiles _has:Type:ref:criterion (search.html#has): resources of typ
// that a resource of Type matching the criterion points at through ref.
func (c *compiler) has(typ string, cl *search.Clause) (ridSet, error) {
	h := cl.Has
	innerSet, err := c.clause(h.Type, &h.Clause)
	if err != nil {
		return ridSet{}, err
	}
	inner, args := c.asSubquery(innerSet, []string{h.Type})
	pid := c.s.search.pid(h.Type, h.Ref.Code)
	x, ref, tr := c.nextAlias(), c.nextAlias(), c.nextAlias()
	q := "SELECT " + tr + ".rid FROM (" + inner + ") " + x + " CROSS JOIN idx_reference " + ref + " CROSS JOIN resources " + tr +
		" WHERE " + ref + ".rid = " + x + ".rid AND " + ref + ".pid = ? AND " + ref + ".target_type = ? AND " +
		tr + ".type = " + ref + ".target_type AND " + tr + ".id = " + ref + ".target_id AND " + tr + ".deleted = ?"
	args = append(args, pid, typ, false)
	set := ridSet{sub: q, args: args, rank: rankHas}
	if next := probeOf(innerSet); next != nil {
		set.probe = func(c *compiler, rid string) (string, []any) {
			tr, ref := c.nextAlias(), c.nextAlias()
			inner, iargs := next(c, ref+".rid")
			return "EXISTS (SELECT 1 FROM resources " + tr + " CROSS JOIN idx_reference " + ref + " WHERE " + tr + ".rid = " + rid +
				" AND " + ref + ".pid = ? AND " + ref + ".target_id = " + tr + ".id AND " + ref + ".target_type = " + tr + ".type AND " +
				inner + ")", append([]any{pid}, iargs...)
		}
	}
	return set, nil
}

// pids lists the pids of code on each of types (those that have it).
func (c *compiler) pids(types []string, code string) []any {
	var out []any
	for _, t := range types {
		if pid := c.s.search.pid(t, code); pid != 0 {
			out = append(out, pid)
		}
	}
	return out
}

func inList(n int) string {
	if n == 1 {
		return " = ?"
	}
	return " IN (" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

func typeArgs(types []string) []any {
	out := make([]any, len(types))
	for i, t := range types {
		out[i] = t
	}
	return out
}

// never is a set without members.
var never = ridSet{sub: "SELECT 0 AS rid WHERE 1 = 0", rank: rankID}

// leaf compiles a clause without chain on the resource types it ends at.
func (c *compiler) leaf(types []string, cl *search.Clause) (ridSet, error) {
	switch cl.Param.Code {
	case "_id":
		return c.idLeaf(types, cl)
	case "_lastUpdated":
		return c.lastUpdatedLeaf(types, cl)
	}
	pids := c.pids(types, cl.Param.Code)
	if len(pids) == 0 {
		return never, nil // not indexed (e.g. special parameters)
	}
	table := tableOf(cl.Param.Type)
	pidCond := "{a}.pid" + inList(len(pids))
	if cl.Modifier == search.ModifierMissing {
		// :missing=true holds for resources with no row; several values
		// OR together (true,false is everything).
		hasTrue, hasFalse := false, false
		for _, v := range cl.Values {
			hasTrue = hasTrue || v.Missing
			hasFalse = hasFalse || !v.Missing
		}
		if hasTrue && hasFalse {
			return ridSet{table: "resources", cond: "{a}.type" + inList(len(types)) + " AND {a}.deleted = ?",
				args: append(typeArgs(types), false), rank: rankPresent}, nil
		}
		return ridSet{table: table, cond: pidCond, args: pids, negate: hasTrue, rank: rankPresent}, nil
	}
	var ors []string
	args := append([]any{}, pids...)
	rank, ordered := rankRange, false
	negate := cl.Modifier == search.ModifierNot
	for i := range cl.Values {
		v := &cl.Values[i]
		cond, vargs, r, err := c.valueCond(cl, v)
		if err != nil {
			return ridSet{}, err
		}
		ors = append(ors, cond)
		args = append(args, vargs...)
		if i == 0 || r > rank {
			rank = r
		}
	}
	ordered = len(cl.Values) == 1 && rank == rankEqual && !negate
	cond := pidCond + " AND " + orJoin(ors)
	if negate {
		rank = rankScan
	}
	return ridSet{table: table, cond: cond, args: args, negate: negate, rank: rank, ordered: ordered && len(pids) == 1}, nil
}

func orJoin(conds []string) string {
	if len(conds) == 1 {
		return conds[0]
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

func tableOf(t search.Type) string {
	switch t {
	case search.TypeString:
		return "idx_string"
	case search.TypeToken:
		return "idx_token"
	case search.TypeDate:
		return "idx_date"
	case search.TypeNumber:
		return "idx_number"
	case search.TypeQuantity:
		return "idx_quantity"
	case search.TypeReference:
		return "idx_reference"
	case search.TypeURI:
		return "idx_uri"
	case search.TypeComposite:
		return "idx_composite"
	}
	return ""
}

// valueCond compiles one value of a clause into a condition on the leaf's
// row, with its arguments and driver rank.
func (c *compiler) valueCond(cl *search.Clause, v *search.Operand) (string, []any, int, error) {
	switch cl.Param.Type {
	case search.TypeString:
		cond, args, r := c.stringCond("{a}.norm", "{a}.exact", cl.Modifier, v.String)
		return cond, args, r, nil
	case search.TypeToken:
		if cl.Modifier == search.ModifierText {
			cond, args := prefixCond("{a}.text", v.String.Norm)
			return cond, args, rankScan, nil
		}
		cond, args, r := tokenCond("{a}.system", "{a}.code", v)
		return cond, args, r, nil
	case search.TypeDate:
		cond, args := c.dateCond("{a}.low", "{a}.high", v.Prefix, v.Date)
		return cond, args, rankRange, nil
	case search.TypeNumber:
		cond, args := numberCond("{a}.value", v.Prefix, v.Number)
		return cond, args, rankRange, nil
	case search.TypeQuantity:
		cond, args := quantityCond(quantityCols{"{a}.value", "{a}.system", "{a}.code", "{a}.unit", "{a}.cvalue", "{a}.ccode"}, v)
		return cond, args, rankRange, nil
	case search.TypeReference:
		cond, args := referenceCond(v.Reference)
		return cond, args, rankEqual, nil
	case search.TypeURI:
		return c.uriCond("{a}.uri", cl.Modifier, v.URI)
	case search.TypeComposite:
		return c.compositeCond(cl.Param, v)
	}
	return "", nil, 0, fhir.Invalid("search parameter %q: type %s cannot be searched", cl.Name, cl.Param.Type)
}

// stringCond: default is starts-with on the normalized form, :exact
// compares the original, :contains matches anywhere (search.html#string).
func (c *compiler) stringCond(norm, exact string, mod search.Modifier, v search.StringValue) (string, []any, int) {
	switch mod {
	case search.ModifierExact:
		return norm + " = ? AND " + exact + " = ?", []any{v.Norm, v.Exact}, rankExact
	case search.ModifierContains:
		return c.s.d.contains(norm), []any{v.Norm}, rankScan
	}
	cond, args := prefixCond(norm, v.Norm)
	return cond, args, rankPrefix
}

// contains is a substring test that needs no escaping of LIKE wildcards.
func (d dialect) contains(col string) string {
	if d.pg {
		return "strpos(" + col + ", ?) > 0"
	}
	return "instr(" + col + ", ?) > 0"
}

// prefixCond matches values starting with p as a key range [p, succ(p)),
// which both databases answer from the index (the columns compare bytes:
// BINARY on SQLite, COLLATE "C" on PostgreSQL).
func prefixCond(col, p string) (string, []any) {
	if p == "" {
		return "1 = 1", nil
	}
	if next, ok := successor(p); ok {
		return col + " >= ? AND " + col + " < ?", []any{p, next}
	}
	return col + " >= ?", []any{p}
}

// successor returns the smallest string greater than every string that
// starts with p: p with its last rune incremented (dropping trailing
// maximal runes). ok is false when there is none.
func successor(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r == utf8.RuneError && size <= 1 {
			continue
		}
		for r++; r <= utf8.MaxRune; r++ {
			if utf8.ValidRune(r) {
				return p + string(r), true
			}
		}
	}
	return "", false
}

// tokenCond: code, system|code, |code (no system) and system| (any code),
// search.html#token.
func tokenCond(system, code string, v *search.Operand) (string, []any, int) {
	t := v.Token
	switch {
	case !v.HasSystem:
		return code + " = ?", []any{t.Code}, rankEqual
	case t.Code == "":
		return system + " = ?", []any{t.System}, rankScan
	}
	return "(" + code + " = ? AND " + system + " = ?)", []any{t.Code, t.System}, rankEqual
}

// dateCond compares the row's range [low, high] with the value's range
// [pl, ph] as R4 search.html#prefix defines each prefix for ranges. Each
// condition also bounds low or high alone, so that one of the two date
// indexes serves it.
func (c *compiler) dateCond(low, high string, p search.Prefix, d search.DateRange) (string, []any) {
	pl, ph := d.Low, d.High
	switch p {
	case search.PrefixNe:
		return "NOT (" + low + " >= ? AND " + high + " <= ?)", []any{pl, ph}
	case search.PrefixGt:
		return high + " > ?", []any{ph}
	case search.PrefixLt:
		return low + " < ?", []any{pl}
	case search.PrefixGe:
		// above the value, or within it: high > ph OR (low >= pl AND high <= ph)
		return high + " >= ? AND (" + high + " > ? OR " + low + " >= ?)", []any{pl, ph, pl}
	case search.PrefixLe:
		return low + " <= ? AND (" + low + " < ? OR " + high + " <= ?)", []any{ph, pl, ph}
	case search.PrefixSa:
		return low + " > ?", []any{ph}
	case search.PrefixEb:
		return high + " < ?", []any{pl}
	case search.PrefixAp:
		lo, hi := c.approximate(pl, ph)
		return low + " <= ? AND " + high + " >= ?", []any{hi, lo}
	}
	return low + " >= ? AND " + low + " <= ? AND " + high + " <= ?", []any{pl, ph, ph}
}

// approximate widens [pl, ph] by a tenth of its distance from now, the
// "approximately" of search.html#prefix (the spec leaves the amount to the
// server; 10% is its own example for numbers).
func (c *compiler) approximate(pl, ph int64) (int64, int64) {
	now := c.now.UnixMicro()
	mid := pl/2 + ph/2
	gap := now - mid
	if gap < 0 {
		gap = -gap
	}
	gap /= 10
	lo, hi := pl-gap, ph+gap
	if lo > pl {
		lo = search.MinDate
	}
	if hi < ph {
		hi = search.MaxDate
	}
	return lo, hi
}

// numberCond: eq means within the precision range of the value (100 is
// [99.5, 100.5)); the other prefixes compare with the value itself
// (search.html#number).
func numberCond(col string, p search.Prefix, n search.NumberValue) (string, []any) {
	switch p {
	case search.PrefixNe:
		return "NOT (" + col + " >= ? AND " + col + " < ?)", []any{n.Low, n.High}
	case search.PrefixGt, search.PrefixSa:
		return col + " > ?", []any{n.Value}
	case search.PrefixLt, search.PrefixEb:
		return col + " < ?", []any{n.Value}
	case search.PrefixGe:
		return col + " >= ?", []any{n.Value}
	case search.PrefixLe:
		return col + " <= ?", []any{n.Value}
	case search.PrefixAp:
		d := math.Max(math.Abs(n.Value)/10, (n.High-n.Low)/2)
		return col + " >= ? AND " + col + " <= ?", []any{n.Value - d, n.Value + d}
	}
	return col + " >= ? AND " + col + " < ?", []any{n.Low, n.High}
}

type quantityCols struct{ value, system, code, unit, cvalue, ccode string }

// quantityCond: number semantics on the value, plus the unit: system|code
// must match (in canonical UCUM units when both sides have them), a code
// alone matches the coded or the human unit (search.html#quantity).
func quantityCond(q quantityCols, v *search.Operand) (string, []any) {
	qv := v.Quantity
	num, nargs := numberCond(q.value, v.Prefix, qv.NumberValue)
	switch {
	case qv.Code == "" && qv.System == "":
		return num, nargs
	case qv.System == "":
		return "(" + num + " AND (" + q.code + " = ? OR " + q.unit + " = ?))", append(nargs, qv.Code, qv.Code)
	}
	direct := "(" + num + " AND " + q.system + " = ? AND " + q.code + " = ?)"
	args := append(nargs, qv.System, qv.Code)
	if qv.CanonicalCode == "" {
		return direct, args
	}
	cnum, cargs := numberCond(q.cvalue, v.Prefix, qv.Canonical)
	args = append(args, cargs...)
	args = append(args, qv.CanonicalCode)
	return "(" + direct + " OR (" + cnum + " AND " + q.ccode + " = ?))", args
}

// referenceCond: an id matches any target type (or the :Type modifier's,
// already in the value), Type/id both, an absolute URL the URL
// (search.html#reference).
func referenceCond(r search.ReferenceValue) (string, []any) {
	switch {
	case r.URL != "":
		return "{a}.url = ?", []any{r.URL}
	case r.Type == "":
		return "{a}.target_id = ?", []any{r.ID}
	}
	return "({a}.target_id = ? AND {a}.target_type = ?)", []any{r.ID, r.Type}
}

// uriCond: equality, :below (the value is a prefix of the uri) and :above
// (the uri is a prefix of the value), search.html#uri.
func (c *compiler) uriCond(col string, mod search.Modifier, u string) (string, []any, int, error) {
	switch mod {
	case search.ModifierBelow:
		cond, args := prefixCond(col, u)
		return cond, args, rankPrefix, nil
	case search.ModifierAbove:
		return col + " <= ? AND " + c.s.d.substr("?", col) + " = " + col, []any{u, u}, rankScan, nil
	}
	return col + " = ?", []any{u}, rankEqual, nil
}

// substr is the prefix of s as long as col.
func (d dialect) substr(s, col string) string {
	if d.pg {
		return "substr(" + s + "::text, 1, length(" + col + "))"
	}
	return "substr(" + s + ", 1, length(" + col + "))"
}

// compositeCond matches every component on the same row (the same
// element of the resource), search.html#composite.
func (c *compiler) compositeCond(p *search.Param, v *search.Operand) (string, []any, int, error) {
	if len(p.Components) > search.MaxCompositeParts {
		return "", nil, 0, fhir.Invalid("search parameter %q: composites of more than %d parts are not supported", p.Code, search.MaxCompositeParts)
	}
	var conds []string
	var args []any
	for i, part := range v.Parts {
		n := strconv.Itoa(i + 1)
		s, code, lo, cc, cv := "{a}.s"+n, "{a}.c"+n, "{a}.lo"+n, "{a}.cc"+n, "{a}.cv"+n
		var cond string
		var a []any
		switch part.Type {
		case search.TypeToken:
			cond, a, _ = tokenCond(s, code, &part)
		case search.TypeString:
			cond, a = prefixCond(code, part.String.Norm)
		case search.TypeReference:
			cond, a = code+" = ?", []any{search.RefKey(part.Reference)}
		case search.TypeURI:
			cond, a = code+" = ?", []any{part.URI}
		case search.TypeDate:
			cond, a = c.dateCond(lo, "{a}.hi"+n, part.Prefix, part.Date)
			for j := range a {
				a[j] = float64(a[j].(int64))
			}
		case search.TypeNumber:
			cond, a = numberCond(lo, part.Prefix, part.Number)
		case search.TypeQuantity:
			cond, a = quantityCond(quantityCols{lo, s, code, code, cv, cc}, &part)
		default:
			return "", nil, 0, fhir.Invalid("search parameter %q: component %d cannot be searched", p.Code, i+1)
		}
		conds = append(conds, cond)
		args = append(args, a...)
	}
	return "(" + strings.Join(conds, " AND ") + ")", args, rankEqual, nil
}

// idLeaf: _id is resources.id.
func (c *compiler) idLeaf(types []string, cl *search.Clause) (ridSet, error) {
	if cl.Modifier == search.ModifierMissing {
		for _, v := range cl.Values {
			if !v.Missing {
				return ridSet{table: "resources", cond: "{a}.type" + inList(len(types)) + " AND {a}.deleted = ?",
					args: append(typeArgs(types), false), rank: rankPresent}, nil
			}
		}
		return never, nil // every resource has an id
	}
	args := append(typeArgs(types), false)
	var ids []string
	for _, v := range cl.Values {
		ids = append(ids, v.Token.Code)
		args = append(args, v.Token.Code)
	}
	cond := "{a}.type" + inList(len(types)) + " AND {a}.deleted = ? AND {a}.id" + inList(len(ids))
	return ridSet{table: "resources", cond: cond, args: args, rank: rankID, negate: cl.Modifier == search.ModifierNot}, nil
}

// lastUpdatedLeaf: _lastUpdated is resources.ts, an instant (a range of
// one microsecond).
func (c *compiler) lastUpdatedLeaf(types []string, cl *search.Clause) (ridSet, error) {
	if cl.Modifier == search.ModifierMissing {
		return c.idLeaf(types, cl) // like _id, every resource has one
	}
	args := append(typeArgs(types), false)
	var ors []string
	for _, v := range cl.Values {
		cond, a := c.dateCond("{a}.ts", "{a}.ts", v.Prefix, v.Date)
		ors = append(ors, cond)
		args = append(args, a...)
	}
	cond := "{a}.type" + inList(len(types)) + " AND {a}.deleted = ? AND " + orJoin(ors)
	return ridSet{table: "resources", cond: cond, args: args, rank: rankRange}, nil
}

// compartment is the set of resources of typ in the compartment of
// Patient/id (R4 compartmentdefinition-patient.html): those that point at
// the patient through one of the compartment's parameters, and the patient
// itself.
func (c *compiler) compartment(typ, compType, id string) (ridSet, error) {
	if compType != "Patient" {
		return ridSet{}, fhir.NotFound("compartment %s is not supported", compType)
	}
	var pids []any
	for _, code := range search.PatientCompartment(typ) {
		if pid := c.s.search.pid(typ, code); pid != 0 {
			pids = append(pids, pid)
		}
	}
	var parts []string
	var args []any
	if len(pids) > 0 {
		parts = append(parts, "SELECT rid FROM idx_reference WHERE pid"+inList(len(pids))+" AND target_id = ? AND target_type = ?")
		args = append(append(args, pids...), id, compType)
	}
	if typ == compType {
		parts = append(parts, "SELECT rid FROM resources WHERE type = ? AND id = ? AND deleted = ?")
		args = append(args, typ, id, false)
	}
	if len(parts) == 0 {
		return ridSet{}, fhir.Invalid("%s resources are never in a %s compartment", typ, compType)
	}
	return ridSet{sub: strings.Join(parts, " UNION "), args: args, rank: rankCompartment}, nil
}

// errUnsupported is returned for clauses the compiler cannot express.
func errUnsupported(cl *search.Clause) error {
	return fhir.Errorf(400, fhir.IssueNotSupported, "search parameter %q is not supported", cl.Name)
}

var _ = fmt.Sprintf
var _ = errUnsupported
