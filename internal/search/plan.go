package search

import (
	"fmt"
	"sync"

	"github.com/fhirgate/fhirgate/internal/fhirpath"
)

// planParam is a parameter compiled for one resource type: its expression
// pruned to the branches that can select from that type.
type planParam struct {
	p     *Param
	expr  *fhirpath.Expr
	comps []*fhirpath.Expr // composite components, in order
}

// plans compiles every expression of the registry once (FHIRPath parse,
// union pruning per base type); extraction then only evaluates.
var plans = sync.OnceValues(func() (map[string][]planParam, error) {
	out := map[string][]planParam{}
	for _, p := range reg().all {
		if p.Expression == "" || p.Type == TypeSpecial {
			continue // _text, _content, _query, near: nothing to index by path
		}
		full, err := fhirpath.Parse(p.Expression)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.ID, err)
		}
		var comps []*fhirpath.Expr
		for _, c := range p.Components {
			ce, err := fhirpath.Parse(c.Expression)
			if err != nil {
				return nil, fmt.Errorf("%s component %s: %w", p.ID, c.Param.ID, err)
			}
			comps = append(comps, ce)
		}
		for _, t := range p.appliesTo() {
			if e := full.ForType(t); e != nil {
				out[t] = append(out[t], planParam{p: p, expr: e, comps: comps})
			}
		}
	}
	return out, nil
})

// Expression returns p's expression as compiled for resourceType: only the
// union branches that can select from that type. ok is false when p does
// not apply to resourceType or has no expression.
func Expression(resourceType, code string) (expr *fhirpath.Expr, ok bool) {
	ps, err := plans()
	if err != nil {
		return nil, false
	}
	for _, pp := range ps[resourceType] {
		if pp.p.Code == code {
			return pp.expr, true
		}
	}
	return nil, false
}
