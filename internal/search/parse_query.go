package search

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// ParseQuery parses the parameters of a search on resourceType into a
// Query (R4 search.html).
//
// Parameters the server does not know or does not support are ignored and
// reported as warnings, which the caller returns as an OperationOutcome
// entry with search.mode "outcome"; with strict (the client sent
// Prefer: handling=strict) they are refused instead (R4
// search.html#errors). A malformed value, an unknown prefix or modifier,
// or a misused parameter is always refused: the error is a *fhir.Error with
// status 400 whose diagnostics name the parameter.
func ParseQuery(resourceType string, params url.Values, strict bool) (*Query, []fhir.Issue, error) {
	if !fhir.IsResourceType(resourceType) {
		return nil, nil, fhir.NotFound("unknown resource type %q", resourceType)
	}
	p := &queryParser{q: &Query{Type: resourceType}, strict: strict}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys) // url.Values is a map: sort for a deterministic AST
	for _, k := range keys {
		if err := p.param(k, params[k]); err != nil {
			return nil, nil, err
		}
	}
	return p.q, p.warnings, nil
}

type queryParser struct {
	q        *Query
	strict   bool
	warnings []fhir.Issue
}

// ignored are parameters that carry no search criterion: _format and
// _pretty are handled by the HTTP layer.
var ignored = map[string]bool{"_format": true, "_pretty": true}

// unsupported are standard parameters fhirgate does not implement; like
// unknown ones they are ignored with a warning, or refused when strict.
var unsupported = map[string]bool{"_text": true, "_content": true, "_query": true, "_list": true,
	"_filter": true, "_contained": true, "_containedType": true, "_type": true, "_graph": true}

func (p *queryParser) param(key string, values []string) error {
	base, _, _ := strings.Cut(key, ":")
	switch {
	case ignored[key]:
		return nil
	case unsupported[base]:
		return p.unknown(key, "is not supported")
	case isControl(base):
		return p.control(key, values)
	}
	for _, v := range values {
		if v == "" {
			continue // R4 search.html#params: empty values are ignored
		}
		c, err := p.clause(p.q.Type, key)
		if err != nil || c == nil {
			return err
		}
		n, err := parseValues(c, v)
		if err != nil {
			return err
		}
		if n > 0 { // "a=," has only empty alternatives: ignored like "a="
			p.q.Where = append(p.q.Where, *c)
		}
	}
	return nil
}

// unknown ignores a parameter with a warning, or refuses it when strict.
func (p *queryParser) unknown(key, why string) error {
	msg := fmt.Sprintf("search parameter %q %s", key, why)
	if p.strict {
		return fhir.Errorf(400, fhir.IssueNotSupported, "%s", msg)
	}
	p.warnings = append(p.warnings, fhir.Issue{Severity: fhir.SeverityWarning, Code: fhir.IssueNotSupported,
		Diagnostics: msg + "; ignored"})
	return nil
}

// clause parses a parameter name on typ. It returns a nil Clause and a nil
// error for an unknown parameter that was ignored with a warning.
func (p *queryParser) clause(typ, key string) (*Clause, error) {
	if rest, ok := strings.CutPrefix(key, "_has:"); ok {
		return p.has(typ, key, rest)
	}
	hops := strings.Split(key, ".")
	c := &Clause{Name: key, Types: []string{typ}}
	for i, hop := range hops {
		code, mod, _ := strings.Cut(hop, ":")
		param, types := lookupIn(c.Types, code)
		if param == nil {
			return nil, p.unknown(key, fmt.Sprintf("is unknown for %s", strings.Join(c.Types, ", ")))
		}
		if i == len(hops)-1 {
			c.Param, c.Types = param, types
			return c, setModifier(c, key, mod)
		}
		if param.Type != TypeReference {
			return nil, invalid(key, "%q is not a reference parameter and cannot be chained", code)
		}
		next, err := chainTargets(key, param, mod, hops[i+1])
		if err != nil {
			return nil, err
		}
		if len(next) == 0 {
			return nil, p.unknown(key, fmt.Sprintf("is unknown: no target type of %s has it", param.Code))
		}
		c.Chain = append(c.Chain, Link{Param: param, Types: next})
		c.Types = next
	}
	return c, nil
}

// lookupIn finds code on each of types; it returns the parameter of the
// first type that has it and every type that has one of the same type.
func lookupIn(types []string, code string) (*Param, []string) {
	var first *Param
	var has []string
	for _, t := range types {
		if p, ok := Lookup(t, code); ok && (first == nil || p.Type == first.Type) {
			if first == nil {
				first = p
			}
			has = append(has, t)
		}
	}
	return first, has
}

// chainTargets are the types a chain hop follows: the :Type modifier, else
// the targets of param that have the next parameter (R4 search.html#chaining).
func chainTargets(key string, param *Param, mod, nextHop string) ([]string, error) {
	if mod != "" {
		if !fhir.IsResourceType(mod) || !param.HasTarget(mod) {
			return nil, invalid(key, "%q is not a target type of %s", mod, param.Code)
		}
		return []string{mod}, nil
	}
	nextCode, _, _ := strings.Cut(nextHop, ":")
	var out []string
	for _, t := range param.Targets {
		if _, ok := Lookup(t, nextCode); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// has parses _has:Type:ref:rest (R4 search.html#has): Type's parameter ref
// must point at typ; rest is a parameter of Type (itself possibly _has).
func (p *queryParser) has(typ, key, rest string) (*Clause, error) {
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, invalid(key, "_has wants _has:Type:reference:parameter")
	}
	src, refCode, inner := parts[0], parts[1], parts[2]
	if !fhir.IsResourceType(src) {
		return nil, invalid(key, "%q is not a resource type", src)
	}
	ref, ok := Lookup(src, refCode)
	if !ok || ref.Type != TypeReference || !ref.HasTarget(typ) {
		return nil, invalid(key, "%s has no reference parameter %q to %s", src, refCode, typ)
	}
	ic, err := p.clause(src, inner)
	if err != nil || ic == nil {
		return nil, err
	}
	return &Clause{Name: key, Types: []string{typ}, Has: &Has{Type: src, Ref: ref, Clause: *ic}}, nil
}

// modifiers are the modifiers each parameter type supports (R4
// search.html#modifiers); "missing" is allowed on all.
var modifiers = map[Type][]Modifier{
	TypeString:    {ModifierExact, ModifierContains},
	TypeToken:     {ModifierText, ModifierNot},
	TypeURI:       {ModifierAbove, ModifierBelow},
	TypeReference: {},
}

// knownModifiers are the other R4 modifiers: recognized, but not
// supported by fhirgate (or not valid on the parameter's type).
var knownModifiers = map[string]bool{"in": true, "not-in": true, "of-type": true, "identifier": true,
	"above": true, "below": true, "exact": true, "contains": true, "text": true, "not": true, "type": true}

func setModifier(c *Clause, key, mod string) error {
	switch {
	case mod == "":
		return nil
	case mod == string(ModifierMissing):
		c.Modifier = ModifierMissing
		return nil
	case c.Param.Type == TypeReference && fhir.IsResourceType(mod):
		if !c.Param.HasTarget(mod) {
			return invalid(key, "%q is not a target type of %s", mod, c.Param.Code)
		}
		c.Modifier, c.TargetType = ModifierType, mod
		return nil
	case slices.Contains(modifiers[c.Param.Type], Modifier(mod)):
		c.Modifier = Modifier(mod)
		return nil
	case knownModifiers[mod]:
		return fhir.Errorf(400, fhir.IssueNotSupported,
			"search parameter %q: modifier :%s is not supported on %s parameters", key, mod, c.Param.Type)
	}
	return invalid(key, "unknown modifier :%s", mod)
}

// invalid is the 400 error for a malformed parameter, naming it.
func invalid(key, format string, args ...any) error {
	return fhir.Invalid("search parameter %q: %s", key, fmt.Sprintf(format, args...))
}
