package search

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/fhirgate/fhirgate/fhir"
)

//go:generate go run ./gen -out registry.tsv -choice ../fhirpath/choice_gen.go

//go:embed registry.tsv
var registryTSV string

// Type is a search parameter type (R4 search.html#ptypes).
type Type string

// The search parameter types of R4.
const (
	TypeNumber    Type = "number"
	TypeDate      Type = "date"
	TypeString    Type = "string"
	TypeToken     Type = "token"
	TypeReference Type = "reference"
	TypeComposite Type = "composite"
	TypeQuantity  Type = "quantity"
	TypeURI       Type = "uri"
	TypeSpecial   Type = "special"
)

// Param is one standard R4 SearchParameter. A Param may serve several
// resource types (Base); its Expression is the published one, a union over
// all of them. Params are shared by every caller: treat them as read-only.
type Param struct {
	// ID is the SearchParameter id, e.g. "clinical-patient".
	ID string
	// Code is the name used in a query, e.g. "patient".
	Code string
	// Type is the parameter type.
	Type Type
	// Base lists the resource types the parameter applies to; Resource and
	// DomainResource stand for every (domain) resource type.
	Base []string
	// Expression is the FHIRPath expression; empty for parameters that
	// have none (_text, _content, _query).
	Expression string
	// Targets lists the resource types a reference parameter may point to.
	Targets []string
	// Components are the parts of a composite parameter, in order.
	Components []Component
}

// Component is one part of a composite parameter: the parameter that
// defines its type and the expression evaluated on each item the composite
// selects.
type Component struct {
	Param      *Param
	Expression string
}

// HasTarget tells whether a reference parameter may point to type t.
func (p *Param) HasTarget(t string) bool { return slices.Contains(p.Targets, t) }

// registry is the parsed table.
type registry struct {
	all         []*Param
	byID        map[string]*Param
	byType      map[string]map[string]*Param // resource type -> code -> param
	compartment map[string][]string          // resource type -> param codes
	summary     map[string][]string          // resource type -> isSummary elements
	mandatory   map[string][]string          // resource type -> mandatory elements
}

var reg = sync.OnceValue(func() *registry {
	r, err := parseRegistry(registryTSV)
	if err != nil {
		panic(fmt.Sprintf("search: embedded registry: %v", err))
	}
	return r
})

// noDomain are the resource types that are not DomainResources (R4
// resource.html): they get the Resource parameters but not _text.
var noDomain = map[string]bool{"Binary": true, "Bundle": true, "Parameters": true}

func parseRegistry(tsv string) (*registry, error) {
	r := &registry{byID: map[string]*Param{}, byType: map[string]map[string]*Param{},
		compartment: map[string][]string{}, summary: map[string][]string{}, mandatory: map[string][]string{}}
	type comp struct{ owner, def, expr string }
	var comps []comp
	for n, line := range strings.Split(tsv, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		switch {
		case f[0] == "P" && len(f) == 7:
			p := &Param{ID: f[1], Code: f[2], Type: Type(f[3]), Base: split(f[4]), Targets: targets(f[5]), Expression: f[6]}
			r.all = append(r.all, p)
			r.byID[p.ID] = p
		case f[0] == "C" && len(f) == 4:
			comps = append(comps, comp{f[1], f[2], f[3]})
		case f[0] == "K" && len(f) == 3:
			r.compartment[f[1]] = split(f[2])
		case f[0] == "S" && len(f) == 3:
			r.summary[f[1]] = split(f[2])
		case f[0] == "M" && len(f) == 3:
			r.mandatory[f[1]] = split(f[2])
		default:
			return nil, fmt.Errorf("line %d: malformed", n+1)
		}
	}
	for _, c := range comps {
		owner, def := r.byID[c.owner], r.byID[c.def]
		if owner == nil || def == nil {
			return nil, fmt.Errorf("component %s of %s: unknown parameter", c.def, c.owner)
		}
		owner.Components = append(owner.Components, Component{Param: def, Expression: c.expr})
	}
	for _, p := range r.all {
		for _, t := range p.appliesTo() {
			m := r.byType[t]
			if m == nil {
				m = map[string]*Param{}
				r.byType[t] = m
			}
			if old := m[p.Code]; old != nil {
				return nil, fmt.Errorf("%s: code %q of %s also defined by %s", t, p.Code, p.ID, old.ID)
			}
			m[p.Code] = p
		}
	}
	return r, nil
}

// appliesTo expands Base into concrete resource types.
func (p *Param) appliesTo() []string {
	var out []string
	for _, b := range p.Base {
		switch b {
		case "Resource", "DomainResource":
			for _, t := range fhir.ResourceTypes() {
				if b == "Resource" || !noDomain[t] {
					out = append(out, t)
				}
			}
		default:
			out = append(out, b)
		}
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// targets expands "*", the table's spelling of Reference(Any): every
// resource type but Parameters, which is never stored.
func targets(s string) []string {
	if s != "*" {
		return split(s)
	}
	return slices.DeleteFunc(fhir.ResourceTypes(), func(t string) bool { return t == "Parameters" })
}

// Lookup returns the parameter named code on resourceType, including the
// parameters common to all resources (_id, _lastUpdated, _tag, _profile,
// _security, _source, _text, _content, _query).
func Lookup(resourceType, code string) (*Param, bool) {
	p, ok := reg().byType[resourceType][code]
	return p, ok
}

// ByID returns the parameter with the given SearchParameter id.
func ByID(id string) (*Param, bool) {
	p, ok := reg().byID[id]
	return p, ok
}

// Params returns the parameters of resourceType sorted by code, or nil for
// an unknown type.
func Params(resourceType string) []*Param {
	m := reg().byType[resourceType]
	out := make([]*Param, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Param) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// All returns every parameter of the registry in the published order.
func All() []*Param { return slices.Clone(reg().all) }

// PatientCompartment returns the codes of the parameters of resourceType
// through which a resource is in a Patient's compartment (R4
// compartmentdefinition-patient.html), or nil if resources of that type are
// never in it. Patient/[id]/* search and Patient- and Group-level $export
// select by these parameters.
func PatientCompartment(resourceType string) []string {
	return slices.Clone(reg().compartment[resourceType])
}

// PatientCompartmentTypes returns the resource types that may be in a
// Patient compartment, sorted.
func PatientCompartmentTypes() []string {
	out := make([]string, 0, len(reg().compartment))
	for t := range reg().compartment {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// SummaryElements returns the top-level elements of resourceType marked
// isSummary in R4, which _summary=true returns (R4 search.html#summary);
// choice elements are named without [x] ("value").
func SummaryElements(resourceType string) []string {
	return slices.Clone(reg().summary[resourceType])
}

// MandatoryElements returns the top-level elements of resourceType with a
// minimum cardinality of 1, which a subsetted resource keeps.
func MandatoryElements(resourceType string) []string {
	return slices.Clone(reg().mandatory[resourceType])
}
