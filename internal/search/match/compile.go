package match

import (
	"net/url"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/search"
)

// Compiler compiles Matchers with a server's settings.
type Compiler struct {
	// Base is the server's FHIR base URL (e.g. http://host/fhir): a
	// reference value written as an absolute URL under it is compared as
	// Type/id, which is how the search engine treats it
	// (search.html#reference: "the server SHOULD match"). Empty: no such
	// rewriting.
	Base string
	// Now is the clock that the ap prefix on dates measures its distance
	// from, read once per Compile [time.Now].
	Now func() time.Time
}

// Compile returns a Matcher of queries on resourceType with the default
// Compiler (no base URL, the system clock).
func Compile(resourceType string, queries []url.Values) (*Matcher, error) {
	return Compiler{}.Compile(resourceType, queries)
}

// Compile parses queries, FHIR searches on resourceType, strictly and
// prepares them for Match: a resource matches when it matches at least
// one query (no queries: nothing matches; an empty query: everything).
// What one resource cannot decide, or what the parser does not know, is a
// 400 *fhir.Error naming the parameter.
func (c Compiler) Compile(resourceType string, queries []url.Values) (*Matcher, error) {
	if !fhir.IsResourceType(resourceType) {
		return nil, fhir.Invalid("unknown resource type %q", resourceType)
	}
	qs := make([]*search.Query, 0, len(queries))
	for _, raw := range queries {
		q, _, err := search.ParseQuery(resourceType, raw, true)
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	return c.CompileQueries(resourceType, qs)
}

// CompileQueries is Compile for queries parsed already (with
// search.ParseQuery, strict or not).
func (c Compiler) CompileQueries(resourceType string, qs []*search.Query) (*Matcher, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cc := compiler{base: strings.TrimSuffix(c.Base, "/"), now: now().UnixMicro()}
	m := &Matcher{typ: resourceType, queries: make([][]clause, 0, len(qs))}
	for _, q := range qs {
		if q.Type != resourceType {
			return nil, fhir.Invalid("a query on %s cannot filter %s", q.Type, resourceType)
		}
		if name := resultParam(q); name != "" {
			return nil, fhir.Invalid("search parameter %q: a filter on %s cannot use result parameters", name, resourceType)
		}
		conj := make([]clause, 0, len(q.Where))
		merged := map[int]bool{}
		for _, idx := range dateIntervals(q.Where) {
			for _, i := range idx {
				merged[i] = true
			}
			conj = append(conj, cc.intervalClause(q.Where, idx))
			m.rows = true
		}
		for i := range q.Where {
			if merged[i] {
				continue
			}
			cl, err := cc.clause(&q.Where[i])
			if err != nil {
				return nil, err
			}
			m.rows = m.rows || cl.kind == kindRows || cl.kind == kindMissing
			conj = append(conj, cl)
		}
		m.queries = append(m.queries, conj)
	}
	m.usesNow = cc.usedNow
	return m, nil
}

// resultParam names a result parameter (search.html#return) that q uses,
// or "": they shape a result set, which one resource does not have.
func resultParam(q *search.Query) string {
	switch {
	case q.HasCount:
		return "_count"
	case len(q.Sort) > 0:
		return "_sort"
	case len(q.Includes) > 0:
		return "_include"
	case len(q.RevIncludes) > 0:
		return "_revinclude"
	case q.Summary != "":
		return "_summary"
	case len(q.Elements) > 0:
		return "_elements"
	case q.Total != "":
		return "_total"
	case q.Cursor != "":
		return "_cursor"
	case q.Offset != 0:
		return "_offset"
	}
	return ""
}

// kind is how a clause is decided.
type kind uint8

const (
	kindRows        kind = iota // a condition on the rows of one parameter
	kindMissing                 // :missing: whether the parameter has rows
	kindID                      // _id, from the resource's id
	kindLastUpdated             // _lastUpdated, from meta.lastUpdated
	kindConst                   // always the value of constant
)

// clause is one compiled search parameter occurrence: its values are
// alternatives.
type clause struct {
	kind     kind
	code     string      // the parameter's code, which its rows carry
	typ      search.Type // the parameter's type: which rows to look at
	mod      search.Modifier
	negate   bool // :not: true when no row matches any value
	every    bool // one row must match every value (a date interval)
	constant bool
	// kindMissing: true matches resources without rows, false with rows.
	missing bool
	// kindID: the ids.
	ids []string
	// kindRows and kindLastUpdated: the values.
	values []value
}

// compiler compiles the clauses of one Compile.
type compiler struct {
	base    string
	now     int64 // microseconds, for ap on dates
	usedNow bool  // some value depends on now
}

func (c *compiler) clause(cl *search.Clause) (clause, error) {
	switch {
	case cl.Has != nil:
		return clause{}, notSingle(cl.Name, "_has selects by the resources that point at a resource")
	case len(cl.Chain) > 0:
		return clause{}, notSingle(cl.Name, "a chained parameter depends on the resources it points at")
	}
	switch cl.Param.Code {
	case "_id":
		return c.idClause(cl), nil
	case "_lastUpdated":
		return c.lastUpdatedClause(cl), nil
	}
	if cl.Param.Type == search.TypeSpecial || cl.Param.Expression == "" {
		return clause{}, fhir.NotSupported("search parameter %q cannot be evaluated on a single resource", cl.Name)
	}
	out := clause{kind: kindRows, code: cl.Param.Code, typ: cl.Param.Type, mod: cl.Modifier}
	if cl.Modifier == search.ModifierMissing {
		return missingClause(out, cl.Values), nil
	}
	out.negate = cl.Modifier == search.ModifierNot
	if cl.Param.Type == search.TypeComposite && len(cl.Param.Components) > search.MaxCompositeParts {
		return clause{}, fhir.Invalid("search parameter %q: composites of more than %d parts are not supported",
			cl.Param.Code, search.MaxCompositeParts)
	}
	for i := range cl.Values {
		v, err := c.value(cl, &cl.Values[i])
		if err != nil {
			return clause{}, err
		}
		out.values = append(out.values, v)
	}
	return out, nil
}

// notSingle is the refusal of a parameter that needs other resources.
func notSingle(name, why string) error {
	return fhir.NotSupported("search parameter %q cannot be evaluated on a single resource: %s", name, why)
}

// missingClause: :missing=true holds for resources without a row of the
// parameter, false for those with one; both together hold for every
// resource (search.html#missing).
func missingClause(out clause, values []search.Operand) clause {
	hasTrue, hasFalse := false, false
	for _, v := range values {
		hasTrue = hasTrue || v.Missing
		hasFalse = hasFalse || !v.Missing
	}
	if hasTrue && hasFalse {
		return clause{kind: kindConst, constant: true}
	}
	out.kind, out.missing = kindMissing, hasTrue
	return out
}

// idClause: _id compares the resource's id with each value's code, as
// the SQL compares resources.id; every resource has an id, so
// :missing=true matches none and :missing=false all.
func (c *compiler) idClause(cl *search.Clause) clause {
	if cl.Modifier == search.ModifierMissing {
		for _, v := range cl.Values {
			if !v.Missing {
				return clause{kind: kindConst, constant: true}
			}
		}
		return clause{kind: kindConst}
	}
	out := clause{kind: kindID, negate: cl.Modifier == search.ModifierNot}
	for _, v := range cl.Values {
		out.ids = append(out.ids, v.Token.Code)
	}
	return out
}

// lastUpdatedClause: _lastUpdated compares meta.lastUpdated, an instant
// (a range of one microsecond, as the SQL keeps resources.ts), with each
// value; :missing is decided as for _id, since every stored version has
// one.
func (c *compiler) lastUpdatedClause(cl *search.Clause) clause {
	if cl.Modifier == search.ModifierMissing {
		return c.idClause(cl)
	}
	out := clause{kind: kindLastUpdated}
	for i := range cl.Values {
		v := &cl.Values[i]
		out.values = append(out.values, value{date: c.dateArgs(v.Prefix, v.Date)})
	}
	return out
}

// value compiles one value of a clause on index rows.
func (c *compiler) value(cl *search.Clause, v *search.Operand) (value, error) {
	switch cl.Param.Type {
	case search.TypeString:
		return value{str: v.String, prefix: newPrefix(v.String.Norm)}, nil
	case search.TypeToken:
		if cl.Modifier == search.ModifierText {
			return value{prefix: newPrefix(v.String.Norm)}, nil
		}
		return value{token: tokenArgsOf(v)}, nil
	case search.TypeDate:
		return value{date: c.dateArgs(v.Prefix, v.Date)}, nil
	case search.TypeNumber:
		return value{number: numberArgsOf(v.Prefix, v.Number)}, nil
	case search.TypeQuantity:
		return value{quantity: quantityArgsOf(v)}, nil
	case search.TypeReference:
		return value{ref: c.localRef(v.Reference)}, nil
	case search.TypeURI:
		return value{uri: v.URI, prefix: newPrefix(v.URI)}, nil
	case search.TypeComposite:
		return c.composite(cl, v)
	}
	return value{}, fhir.Invalid("search parameter %q: type %s cannot be searched", cl.Name, cl.Param.Type)
}

// composite compiles the parts of a composite value, each compared with
// the cell of the same component in one composite row.
func (c *compiler) composite(cl *search.Clause, v *search.Operand) (value, error) {
	out := value{parts: make([]value, len(v.Parts))}
	for i := range v.Parts {
		part := &v.Parts[i]
		p := &out.parts[i]
		p.partType = part.Type
		switch part.Type {
		case search.TypeToken:
			p.token = tokenArgsOf(part)
		case search.TypeString:
			p.prefix = newPrefix(part.String.Norm)
		case search.TypeReference:
			p.uri = search.RefKey(c.localRef(part.Reference))
		case search.TypeURI:
			p.uri = part.URI
		case search.TypeDate:
			p.date = c.dateArgs(part.Prefix, part.Date)
		case search.TypeNumber:
			p.number = numberArgsOf(part.Prefix, part.Number)
		case search.TypeQuantity:
			p.quantity = quantityArgsOf(part)
		default:
			return value{}, fhir.Invalid("search parameter %q: component %d cannot be searched", cl.Param.Code, i+1)
		}
	}
	return out, nil
}

// localRef turns an absolute reference under the server's base into
// Type/id, as the search engine does before it queries the index.
func (c *compiler) localRef(r search.ReferenceValue) search.ReferenceValue {
	if c.base == "" {
		return r
	}
	if rest, ok := strings.CutPrefix(r.URL, c.base+"/"); ok {
		if l, ok := search.ParseReference(rest); ok && l.URL == "" {
			return l
		}
	}
	return r
}
