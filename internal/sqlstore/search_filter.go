package sqlstore

import (
	"net/url"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/search"
)

// Filters for scans outside search: Bulk Data export applies _typeFilter,
// query-restricted scopes and Patient compartment membership to its
// snapshot scans over history or resources, which it writes itself. These
// functions give it the search criteria as a predicate on a rid column.
//
// The predicate reads the search index, which describes the current
// version of each live resource: it selects resources whose current
// version matches. A snapshot scan that meets an older version of such a
// resource (updated after the snapshot) is filtered by what the resource
// is now, not by what it was then.
//
// The SQL uses ? placeholders, in the order of args; a caller inside this
// package passes its whole statement through s.d.rebind once, so that on
// PostgreSQL the numbering covers its own placeholders and these.

// CompileFilter compiles queries on typ into the predicate `rid IN (...)`:
// true for the resources that match at least one query (all parameters of
// a query apply; repeats are AND, commas OR, as in search). Queries are
// parsed strictly: an unknown parameter, a malformed value or a result
// parameter (_count, _sort, _include, ...) is a 400 *fhir.Error naming it,
// so a filter is never silently widened. No queries give "1 = 1".
func (s *Store) CompileFilter(typ string, queries []url.Values) (sql string, args []any, err error) {
	return s.CompileFilterOn("rid", typ, queries)
}

// CompileFilterOn is CompileFilter on the rid column col (e.g. "h.rid").
func (s *Store) CompileFilterOn(col, typ string, queries []url.Values) (string, []any, error) {
	if len(queries) == 0 {
		return "1 = 1", nil, nil
	}
	qs := make([]*search.Query, 0, len(queries))
	for _, raw := range queries {
		q, _, err := search.ParseQuery(typ, raw, true)
		if err != nil {
			return "", nil, err
		}
		if name := resultParam(q); name != "" {
			return "", nil, fhir.Invalid("search parameter %q: a filter on %s cannot use result parameters", name, typ)
		}
		qs = append(qs, q)
	}
	c := &compiler{s: s, now: s.now()}
	set, err := c.restriction(typ, qs)
	if err != nil {
		return "", nil, err
	}
	return col + " IN (" + set.sub + ")", set.args, nil
}

// resultParam names a result parameter that q uses, or "".
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
	case q.Cursor != "" || q.Offset != 0:
		return "_cursor"
	}
	return ""
}

// CompartmentFilter is the predicate `rid IN (...)` selecting the
// resources of typ in the Patient compartment of any of patientIDs (R4
// compartmentdefinition-patient.html): those that point at one of the
// patients through a compartment parameter of typ, and for typ Patient the
// patients themselves. For a type that is never in a Patient compartment
// it is "1 = 0".
func (s *Store) CompartmentFilter(col, typ string, patientIDs []string) (string, []any) {
	if len(patientIDs) == 0 {
		return "1 = 0", nil
	}
	var pids []any
	for _, code := range search.PatientCompartment(typ) {
		if pid := s.search.pid(typ, code); pid != 0 {
			pids = append(pids, pid)
		}
	}
	var parts []string
	var args []any
	ids := make([]any, len(patientIDs))
	for i, id := range patientIDs {
		ids[i] = id
	}
	if len(pids) > 0 {
		parts = append(parts, "SELECT rid FROM idx_reference WHERE pid"+inList(len(pids))+" AND target_type = ? AND target_id"+inList(len(ids)))
		args = append(append(append(args, pids...), "Patient"), ids...)
	}
	if typ == "Patient" {
		parts = append(parts, "SELECT rid FROM resources WHERE type = ? AND id"+inList(len(ids)))
		args = append(append(args, "Patient"), ids...)
	}
	if len(parts) == 0 {
		return "1 = 0", nil
	}
	return col + " IN (" + strings.Join(parts, " UNION ") + ")", args
}
