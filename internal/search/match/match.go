package match

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/fhirgate/fhirgate/internal/search"
)

// Matcher decides whether single resources of one type match a compiled
// OR of search queries. It is safe for concurrent use.
type Matcher struct {
	typ     string
	queries [][]clause // OR of ANDs
	// rows: some clause reads index rows, so Match extracts them.
	rows bool
	// usesNow: some value was computed from the clock (ap on a date).
	usesNow bool
}

// Type returns the resource type the Matcher was compiled for.
func (m *Matcher) Type() string { return m.typ }

// extractors are shared by all Matchers: an Extractor keeps its buffers
// between resources, which is what makes matching cheap, but serves one
// goroutine at a time.
var extractors = sync.Pool{New: func() any { return search.NewExtractor() }}

// Match reports whether body, a JSON resource of the Matcher's type,
// matches at least one of the queries. A body that is not such a resource
// is an error.
func (m *Matcher) Match(body []byte) (bool, error) {
	res, err := search.Decode(body)
	if err != nil {
		return false, fmt.Errorf("match: %w", err)
	}
	return m.MatchDecoded(res)
}

// MatchDecoded is Match on a resource decoded by search.Decode.
func (m *Matcher) MatchDecoded(res map[string]any) (bool, error) {
	if rt, _ := res["resourceType"].(string); rt != m.typ {
		return false, fmt.Errorf("match: resourceType %q, want %q", rt, m.typ)
	}
	if len(m.queries) == 0 {
		return false, nil
	}
	d := doc{}
	d.id, _ = res["id"].(string)
	d.ts, d.hasTS = lastUpdated(res)
	if m.rows {
		x := extractors.Get().(*search.Extractor)
		defer extractors.Put(x)
		rows, err := x.ExtractDecoded(m.typ, res)
		if err != nil {
			return false, fmt.Errorf("match: %w", err)
		}
		d.rows = rows
	}
	return m.matchDoc(&d), nil
}

// lastUpdated reads meta.lastUpdated as the instant the index keeps in
// resources.ts (microseconds).
func lastUpdated(res map[string]any) (int64, bool) {
	meta, _ := res["meta"].(map[string]any)
	s, _ := meta["lastUpdated"].(string)
	if s == "" {
		return 0, false
	}
	r, err := search.ParseDateRange(s)
	if err != nil {
		return 0, false
	}
	return r.Low, true
}

// doc is what clauses look at in one resource.
type doc struct {
	id    string
	ts    int64
	hasTS bool
	rows  *search.Rows // nil when no clause needs rows
}

func (m *Matcher) matchDoc(d *doc) bool {
	for _, q := range m.queries {
		if matchAll(q, d) {
			return true
		}
	}
	return false
}

func matchAll(q []clause, d *doc) bool {
	for i := range q {
		if !q[i].match(d) {
			return false
		}
	}
	return true
}

func (cl *clause) match(d *doc) bool {
	switch cl.kind {
	case kindConst:
		return cl.constant
	case kindID:
		return slices.Contains(cl.ids, d.id) != cl.negate
	case kindLastUpdated:
		if !d.hasTS {
			return false
		}
		for i := range cl.values {
			if cl.values[i].date.match(d.ts, d.ts) {
				return true
			}
		}
		return false
	case kindMissing:
		return cl.present(d.rows) != cl.missing
	}
	return cl.anyRow(d.rows) != cl.negate
}

// present reports whether the resource has a row of the clause's
// parameter.
func (cl *clause) present(r *search.Rows) bool {
	code := cl.code
	switch cl.typ {
	case search.TypeString:
		return slices.ContainsFunc(r.Strings, func(x search.StringRow) bool { return x.Param == code })
	case search.TypeToken:
		return slices.ContainsFunc(r.Tokens, func(x search.TokenRow) bool { return x.Param == code })
	case search.TypeDate:
		return slices.ContainsFunc(r.Dates, func(x search.DateRow) bool { return x.Param == code })
	case search.TypeNumber:
		return slices.ContainsFunc(r.Numbers, func(x search.NumberRow) bool { return x.Param == code })
	case search.TypeQuantity:
		for i := range r.Quantities {
			if r.Quantities[i].Param == code {
				return true
			}
		}
		return false
	case search.TypeReference:
		return slices.ContainsFunc(r.References, func(x search.ReferenceRow) bool { return x.Param == code })
	case search.TypeURI:
		return slices.ContainsFunc(r.URIs, func(x search.URIRow) bool { return x.Param == code })
	case search.TypeComposite:
		for i := range r.Composites {
			if c := &r.Composites[i]; c.Param == code && len(c.Parts) <= search.MaxCompositeParts {
				return true
			}
		}
	}
	return false
}

// anyRow reports whether some row of the clause's parameter matches some
// value of the clause.
func (cl *clause) anyRow(r *search.Rows) bool {
	switch cl.typ {
	case search.TypeString:
		return cl.anyString(r.Strings)
	case search.TypeToken:
		return cl.anyToken(r.Tokens)
	case search.TypeDate:
		for i := range r.Dates {
			if x := &r.Dates[i]; x.Param == cl.code && cl.valuesMatch(func(v *value) bool { return v.date.match(x.Low, x.High) }) {
				return true
			}
		}
	case search.TypeNumber:
		for i := range r.Numbers {
			if x := &r.Numbers[i]; x.Param == cl.code {
				n := search.Finite(x.Value, x.Low, x.High)
				if cl.anyValue(func(v *value) bool { return v.number.match(n) }) {
					return true
				}
			}
		}
	case search.TypeQuantity:
		for i := range r.Quantities {
			if x := &r.Quantities[i]; x.Param == cl.code {
				q := quantityColsOf(&x.QuantityValue)
				if cl.anyValue(func(v *value) bool { return v.quantity.match(&q) }) {
					return true
				}
			}
		}
	case search.TypeReference:
		for i := range r.References {
			if x := &r.References[i]; x.Param == cl.code && cl.anyValue(func(v *value) bool { return v.matchRef(&x.ReferenceValue) }) {
				return true
			}
		}
	case search.TypeURI:
		for i := range r.URIs {
			if x := &r.URIs[i]; x.Param == cl.code && cl.anyValue(func(v *value) bool { return v.matchURI(cl.mod, x.URI) }) {
				return true
			}
		}
	case search.TypeComposite:
		for i := range r.Composites {
			x := &r.Composites[i]
			if x.Param == cl.code && len(x.Parts) <= search.MaxCompositeParts && cl.anyValue(func(v *value) bool { return v.matchComposite(x) }) {
				return true
			}
		}
	}
	return false
}

// valuesMatch applies f to the values as the clause combines them: any, or
// every for a date interval.
func (cl *clause) valuesMatch(f func(v *value) bool) bool {
	if !cl.every {
		return cl.anyValue(f)
	}
	for i := range cl.values {
		if !f(&cl.values[i]) {
			return false
		}
	}
	return true
}

func (cl *clause) anyValue(f func(v *value) bool) bool {
	for i := range cl.values {
		if f(&cl.values[i]) {
			return true
		}
	}
	return false
}

func (cl *clause) anyString(rows []search.StringRow) bool {
	for i := range rows {
		x := &rows[i]
		if x.Param != cl.code {
			continue
		}
		for j := range cl.values {
			if cl.values[j].matchString(cl.mod, &x.StringValue) {
				return true
			}
		}
	}
	return false
}

func (cl *clause) anyToken(rows []search.TokenRow) bool {
	text := cl.mod == search.ModifierText
	for i := range rows {
		x := &rows[i]
		if x.Param != cl.code {
			continue
		}
		for j := range cl.values {
			v := &cl.values[j]
			if text && v.prefix.match(x.Text) || !text && v.token.match(x.System, x.Code) {
				return true
			}
		}
	}
	return false
}

// ContextMatcher adapts a Matcher to interfaces whose Match takes a
// context, such as export.Matcher.
type ContextMatcher struct{ M *Matcher }

// Match reports whether body matches, unless ctx is done.
func (c ContextMatcher) Match(ctx context.Context, body []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return c.M.Match(body)
}
