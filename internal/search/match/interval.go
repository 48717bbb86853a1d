package match

import (
	"slices"

	"github.com/fhirgate/fhirgate/internal/search"
)

// Date intervals. The search engine reads the lower (ge, gt) and upper
// (le, lt) bounds of one date parameter, date=ge2024-03-01&date=lt2024-03-08,
// the spec's way of searching within a range (R4 search.html#date), as one
// interval that a single date of the resource must fall in
// (internal/sqlstore/search_daterange.go); separately, a resource with one
// early and one late date would match a narrow window. The Matcher does
// the same.

// dateIntervals returns, per date parameter with bounds on both sides,
// the indexes of its bound clauses: plain (no modifier, no chain), a
// single value, and a ge/gt or le/lt prefix. _lastUpdated has one value
// per resource, so it needs no merging.
func dateIntervals(where []search.Clause) [][]int {
	type bounds struct {
		idx          []int
		lower, upper bool
	}
	by := map[string]*bounds{}
	var codes []string
	for i := range where {
		cl := &where[i]
		if cl.Param == nil || cl.Param.Type != search.TypeDate || cl.Param.Code == "_lastUpdated" ||
			cl.Has != nil || len(cl.Chain) > 0 || cl.Modifier != search.ModifierNone || len(cl.Values) != 1 {
			continue
		}
		p := cl.Values[0].Prefix
		lower := p == search.PrefixGe || p == search.PrefixGt
		upper := p == search.PrefixLe || p == search.PrefixLt
		if !lower && !upper {
			continue
		}
		b := by[cl.Param.Code]
		if b == nil {
			b = &bounds{}
			by[cl.Param.Code] = b
			codes = append(codes, cl.Param.Code)
		}
		b.idx = append(b.idx, i)
		b.lower, b.upper = b.lower || lower, b.upper || upper
	}
	slices.Sort(codes)
	var out [][]int
	for _, code := range codes {
		if b := by[code]; b.lower && b.upper {
			out = append(out, b.idx)
		}
	}
	return out
}

// intervalClause compiles the bounds of one date parameter into a clause
// that one date row must satisfy entirely.
func (c *compiler) intervalClause(where []search.Clause, idx []int) clause {
	p := where[idx[0]].Param
	out := clause{kind: kindRows, code: p.Code, typ: search.TypeDate, every: true}
	for _, i := range idx {
		v := &where[i].Values[0]
		out.values = append(out.values, value{date: c.dateArgs(v.Prefix, v.Date)})
	}
	return out
}
