package fhirsearch

import (
	"slices"

	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/search"
)

// Capabilities adds search to a CapabilityStatement (R4
// capabilitystatement.html, rest.resource): the search-type interaction,
// every supported search parameter with its definition, the _include and
// _revinclude values, and conditional update and delete, which the search
// engine makes possible. Register it with fhirapi.Service.AddCapabilities.
func (e *Engine) Capabilities(cs *fhirapi.CapabilityStatement) {
	rev := revIncludes()
	for i := range cs.Rest {
		for j := range cs.Rest[i].Resource {
			r := &cs.Rest[i].Resource[j]
			if !slices.ContainsFunc(r.Interaction, func(c fhirapi.CapInteraction) bool { return c.Code == string(authz.SearchType) }) {
				r.Interaction = append(r.Interaction, fhirapi.CapInteraction{Code: string(authz.SearchType)})
			}
			r.ConditionalUpdate = true
			r.ConditionalDelete = "single"
			r.SearchParam, r.SearchInclude = searchParams(r.Type)
			r.SearchRevInclude = rev[r.Type]
		}
	}
}

// unsupported are the standard parameters fhirgate does not search by
// (package search ignores them with a warning).
var unsupported = map[string]bool{"_text": true, "_content": true, "_query": true}

func searchParams(typ string) ([]fhirapi.CapSearchParam, []string) {
	var params []fhirapi.CapSearchParam
	includes := []string{"*"}
	for _, p := range search.Params(typ) {
		if unsupported[p.Code] || (p.Expression == "" && p.Code != "_id" && p.Code != "_lastUpdated") {
			continue
		}
		params = append(params, fhirapi.CapSearchParam{Name: p.Code, Type: string(p.Type),
			Definition: "http://hl7.org/fhir/SearchParameter/" + p.ID})
		if p.Type == search.TypeReference {
			includes = append(includes, typ+":"+p.Code)
		}
	}
	return params, includes
}

// revIncludes lists, per target type, the Source:param values whose
// references may point at it.
func revIncludes() map[string][]string {
	out := map[string][]string{}
	for _, p := range search.All() {
		if p.Type != search.TypeReference || p.Expression == "" {
			continue
		}
		for _, src := range p.Base {
			for _, t := range p.Targets {
				v := src + ":" + p.Code
				if !slices.Contains(out[t], v) {
					out[t] = append(out[t], v)
				}
			}
		}
	}
	for t := range out {
		slices.Sort(out[t])
	}
	return out
}
