package sqlstore

import (
	"github.com/fhirgate/fhirgate/internal/search"
)

// Date intervals.
//
// A search for an interval of a date parameter is written with two bounds,
// date=ge2024-03-01&date=lt2024-03-08, and the spec shows exactly that
// form for searching within a range (R4 search.html#date). fhirgate reads
// the lower (ge, gt) and upper (le, lt) bounds of one date parameter as one
// interval that a single value of the resource must fall in, as HAPI FHIR
// does; separately, each bound would match almost every resource and a
// resource with one early and one late date would match a narrow window.
//
// Each bound alone is an open-ended index range, so an interval needs more
// to be fast: on SQLite, rows are split by span. A narrow row (high < low
// + 2 days: every dateTime and date value) whose high is at least the
// lower bound X has low > X - 2 days, so narrow rows come from a bounded
// range of a partial index on (pid, low); wide rows (periods, open ends)
// are few and come from a partial index on (pid, high) with high >= X.
// PostgreSQL combines the two plain indexes by itself (bitmap AND), so it
// gets the single-row condition alone, which also avoids integer overflow
// on the open ends there.

// narrowSpan is the span below which a date row counts as narrow. It is
// written into the partial indexes of migration 0004 and must match them
// literally for SQLite to use them.
const (
	narrowSpan    int64 = 172800000000 // two days in microseconds
	narrowSpanSQL       = "172800000000"
)

// dateInterval is the index of a clause in where and whether it bounds the
// interval from below.
type boundClause struct {
	index int
	lower bool
}

// dateIntervals finds, per date parameter, the clauses that can be merged
// into one interval: plain (no modifier, no chain), a single value, and a
// ge/gt or le/lt prefix. Only parameters with a bound on both sides are
// returned.
func dateIntervals(where []search.Clause) map[string][]boundClause {
	by := map[string][]boundClause{}
	for i := range where {
		cl := &where[i]
		if cl.Param == nil || cl.Param.Type != search.TypeDate || cl.Param.Code == "_lastUpdated" ||
			cl.Has != nil || len(cl.Chain) > 0 || cl.Modifier != search.ModifierNone || len(cl.Values) != 1 {
			continue
		}
		switch cl.Values[0].Prefix {
		case search.PrefixGe, search.PrefixGt:
			by[cl.Param.Code] = append(by[cl.Param.Code], boundClause{i, true})
		case search.PrefixLe, search.PrefixLt:
			by[cl.Param.Code] = append(by[cl.Param.Code], boundClause{i, false})
		}
	}
	for code, bs := range by {
		lower, upper := false, false
		for _, b := range bs {
			lower, upper = lower || b.lower, upper || !b.lower
		}
		if !lower || !upper {
			delete(by, code)
		}
	}
	return by
}

// intervalSet compiles the merged bounds of one date parameter.
func (c *compiler) intervalSet(types []string, where []search.Clause, bounds []boundClause) ridSet {
	param := where[bounds[0].index].Param
	pids := c.pids(types, param.Code)
	if len(pids) == 0 {
		return never
	}
	pidCond := "{a}.pid" + inList(len(pids))
	cond := pidCond
	args := append([]any{}, pids...)
	minHigh := search.MinDate // every matching row has high >= minHigh
	for _, b := range bounds {
		v := &where[b.index].Values[0]
		vc, va := c.dateCond("{a}.low", "{a}.high", v.Prefix, v.Date)
		cond += " AND " + vc
		args = append(args, va...)
		switch v.Prefix {
		case search.PrefixGe:
			minHigh = max(minHigh, v.Date.Low)
		case search.PrefixGt:
			minHigh = max(minHigh, v.Date.High)
		}
	}
	set := ridSet{table: "idx_date", cond: cond, args: args, rank: rankPrefix}
	if minHigh == search.MinDate {
		return set
	}
	narrowFrom := minHigh - narrowSpan
	if narrowFrom > minHigh { // wrapped around
		narrowFrom = search.MinDate
	}
	if len(pids) == 1 {
		set.window = &dateWindow{cond: cond, args: args, pid: pids[0], narrowFrom: narrowFrom, minHigh: minHigh}
	}
	if c.s.d.pg {
		return set
	}
	a, b := c.nextAlias(), c.nextAlias()
	set.sub = "SELECT " + a + ".rid FROM idx_date " + a + " INDEXED BY idx_date_narrow WHERE " + expand(pidCond, a) +
		" AND " + a + ".high < " + a + ".low + " + narrowSpanSQL + " AND " + a + ".low > ? AND " + expand(cond, a) +
		" UNION SELECT " + b + ".rid FROM idx_date " + b + " INDEXED BY idx_date_wide WHERE " + expand(pidCond, b) +
		" AND " + b + ".high >= " + b + ".low + " + narrowSpanSQL + " AND " + b + ".high >= ? AND " + expand(cond, b)
	sub := append(append([]any{}, pids...), narrowFrom)
	sub = append(sub, args...)
	sub = append(sub, pids...)
	sub = append(sub, minHigh)
	set.args = append(sub, args...)
	set.probe = probeOf(ridSet{table: "idx_date", cond: cond, args: args})
	return set
}
