package search

import (
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// controls are the result parameters (R4 search.html#return): they shape
// the result, not the match.
var controls = map[string]bool{"_count": true, "_offset": true, "_cursor": true, "_sort": true,
	"_total": true, "_summary": true, "_elements": true, "_include": true, "_revinclude": true}

func isControl(name string) bool { return controls[name] }

func (p *queryParser) control(key string, values []string) error {
	name, mod, _ := strings.Cut(key, ":")
	if name == "_include" || name == "_revinclude" {
		return p.includes(key, name, mod, values)
	}
	if mod != "" {
		return invalid(key, "unknown modifier :%s", mod)
	}
	if len(values) != 1 {
		return invalid(key, "may appear only once")
	}
	v := values[0]
	if v == "" {
		return nil
	}
	q := p.q
	var err error
	switch name {
	case "_count":
		q.Count, err = nonNegative(key, v)
		q.HasCount = err == nil
	case "_offset":
		q.Offset, err = nonNegative(key, v)
	case "_cursor":
		q.Cursor = v
	case "_total":
		q.Total = Total(v)
		err = oneOf(key, v, TotalNone, TotalEstimate, TotalAccurate)
	case "_summary":
		q.Summary = Summary(v)
		err = oneOf(key, v, SummaryTrue, SummaryFalse, SummaryText, SummaryData, SummaryCount)
	case "_elements":
		q.Elements, err = elements(key, q.Type, v)
	case "_sort":
		err = p.sort(key, v)
	}
	return err
}

func nonNegative(key, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, invalid(key, "wants a non-negative integer, got %q", v)
	}
	return n, nil
}

func oneOf[T ~string](key, v string, allowed ...T) error {
	for _, a := range allowed {
		if string(a) == v {
			return nil
		}
	}
	return invalid(key, "unknown value %q", v)
}

// elements reads _elements: top-level element names, optionally written
// Type.element (R4 search.html#elements).
func elements(key, typ, v string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), typ+".")
		if !validElementName(e) {
			return nil, invalid(key, "invalid element name %q", e)
		}
		out = append(out, e)
	}
	return out, nil
}

func validElementName(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isLetter(s[i]) && !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' {
			return false
		}
	}
	return true
}

// sort reads _sort: comma-separated parameter codes, "-" for descending
// (R4 search.html#sort). An unknown code is handled like an unknown
// parameter.
func (p *queryParser) sort(key, v string) error {
	for _, k := range strings.Split(v, ",") {
		desc := strings.HasPrefix(k, "-")
		code := strings.TrimPrefix(k, "-")
		param, ok := Lookup(p.q.Type, code)
		if !ok || param.Type == TypeComposite || param.Type == TypeSpecial || param.Expression == "" {
			if err := p.unknown(key, "cannot sort by "+strconv.Quote(code)); err != nil {
				return err
			}
			continue
		}
		p.q.Sort = append(p.q.Sort, SortKey{Param: param, Descending: desc})
	}
	return nil
}

// includes reads _include and _revinclude values Source:param[:Target] or
// "*", with the :iterate modifier (:recurse is its R3 name), R4
// search.html#include.
func (p *queryParser) includes(key, name, mod string, values []string) error {
	if mod != "" && mod != "iterate" && mod != "recurse" {
		return invalid(key, "unknown modifier :%s", mod)
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		inc, err := parseInclude(key, v)
		if err != nil {
			return err
		}
		inc.Iterate = mod != ""
		if name == "_include" {
			p.q.Includes = append(p.q.Includes, inc)
		} else {
			p.q.RevIncludes = append(p.q.RevIncludes, inc)
		}
	}
	return nil
}

func parseInclude(key, v string) (Include, error) {
	if v == "*" {
		return Include{}, nil
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Include{}, invalid(key, "%q wants Type:parameter[:TargetType]", v)
	}
	inc := Include{Source: parts[0]}
	if !fhir.IsResourceType(inc.Source) {
		return inc, invalid(key, "%q is not a resource type", inc.Source)
	}
	if parts[1] != "*" {
		param, ok := Lookup(inc.Source, parts[1])
		if !ok || param.Type != TypeReference {
			return inc, invalid(key, "%s has no reference parameter %q", inc.Source, parts[1])
		}
		inc.Param = param
	}
	if len(parts) == 3 {
		inc.Target = parts[2]
		if !fhir.IsResourceType(inc.Target) || (inc.Param != nil && !inc.Param.HasTarget(inc.Target)) {
			return inc, invalid(key, "%q is not a target type of %s", inc.Target, parts[1])
		}
	}
	return inc, nil
}
