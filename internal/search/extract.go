package search

import (
	"fmt"

	"github.com/fhirgate/fhirgate/internal/fhirpath"
)

// Extractor computes the index rows of resources. It reuses its buffers
// between calls, so it is not safe for concurrent use: give each writer
// goroutine its own (or use Extract).
type Extractor struct {
	rows    Rows
	scratch [][]Value // per composite component
}

// NewExtractor returns an Extractor.
func NewExtractor() *Extractor { return &Extractor{} }

// Extract returns the index rows of a resource of the given type for every
// search parameter of that type, using a fresh Extractor.
func Extract(resourceType string, body []byte) (*Rows, error) {
	return NewExtractor().Extract(resourceType, body)
}

// Extract decodes body, a JSON resource of resourceType, and returns its
// index rows. The rows are valid until the next call on x.
func (x *Extractor) Extract(resourceType string, body []byte) (*Rows, error) {
	res, err := Decode(body)
	if err != nil {
		return nil, err
	}
	return x.ExtractDecoded(resourceType, res)
}

// ExtractDecoded returns the index rows of a decoded resource. The rows are
// valid until the next call on x.
func (x *Extractor) ExtractDecoded(resourceType string, res map[string]any) (*Rows, error) {
	if rt, _ := res["resourceType"].(string); rt != resourceType {
		return nil, fmt.Errorf("search: resourceType %q, want %q", rt, resourceType)
	}
	ps, err := plans()
	if err != nil {
		return nil, err
	}
	x.rows.Reset()
	for i := range ps[resourceType] {
		pp := &ps[resourceType][i]
		items, err := pp.expr.Eval(res)
		if err != nil {
			return nil, fmt.Errorf("search: %s: %w", pp.p.ID, err)
		}
		if len(items) == 0 {
			continue
		}
		if pp.p.Type == TypeComposite {
			if err := x.composite(pp, items, res); err != nil {
				return nil, err
			}
			continue
		}
		x.rows.add(pp.p, items)
	}
	return &x.rows, nil
}

// add appends the rows of items for parameter p, skipping duplicates (a
// union may select the same element twice).
func (r *Rows) add(p *Param, items []fhirpath.Item) {
	code := p.Code
	switch p.Type {
	case TypeString:
		start := len(r.Strings)
		for _, it := range items {
			eachString(it, func(v StringValue) { r.Strings = appendUnique(r.Strings, start, StringRow{code, v}) })
		}
	case TypeToken:
		start := len(r.Tokens)
		for _, it := range items {
			eachToken(it, func(v TokenValue) { r.Tokens = appendUnique(r.Tokens, start, TokenRow{code, v}) })
		}
	case TypeDate:
		start := len(r.Dates)
		for _, it := range items {
			eachDate(it, func(v DateRange) { r.Dates = appendUnique(r.Dates, start, DateRow{code, v}) })
		}
	case TypeNumber:
		start := len(r.Numbers)
		for _, it := range items {
			eachNumber(it, func(v NumberValue) { r.Numbers = appendUnique(r.Numbers, start, NumberRow{code, v}) })
		}
	case TypeQuantity:
		start := len(r.Quantities)
		for _, it := range items {
			eachQuantity(it, func(v QuantityValue) { r.Quantities = appendUnique(r.Quantities, start, QuantityRow{code, v}) })
		}
	case TypeReference:
		start := len(r.References)
		for _, it := range items {
			eachReference(it, func(v ReferenceValue) {
				r.References = appendUnique(r.References, start, ReferenceRow{code, v})
			})
		}
	case TypeURI:
		start := len(r.URIs)
		for _, it := range items {
			eachURI(it, func(v string) { r.URIs = appendUnique(r.URIs, start, URIRow{code, v}) })
		}
	}
}

func appendUnique[T comparable](s []T, start int, v T) []T {
	for _, x := range s[start:] {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// maxCombinations bounds the rows one composite element may produce (the
// product of its components' value counts).
const maxCombinations = 64

// composite indexes each selected element as the combinations of its
// components' values: a composite matches only when all components match
// on the same element (R4 search.html#composite).
func (x *Extractor) composite(pp *planParam, items []fhirpath.Item, res map[string]any) error {
	if len(x.scratch) < len(pp.comps) {
		x.scratch = make([][]Value, len(pp.comps))
	}
	for _, it := range items {
		// Components last to first: the last is usually value.as(T), the
		// one most often empty, which ends the work for this element.
		n := 1
		for i := len(pp.comps) - 1; i >= 0 && n > 0; i-- {
			vs, err := pp.comps[i].EvalOn(it, res)
			if err != nil {
				return fmt.Errorf("search: %s: %w", pp.p.ID, err)
			}
			x.scratch[i] = appendValues(x.scratch[i][:0], pp.p.Components[i].Param.Type, vs)
			n *= len(x.scratch[i])
		}
		if n == 0 || n > maxCombinations {
			continue
		}
		for k := 0; k < n; k++ {
			parts := make([]Value, len(pp.comps))
			rest := k
			for i := range pp.comps {
				vs := x.scratch[i]
				parts[i] = vs[rest%len(vs)]
				rest /= len(vs)
			}
			x.rows.Composites = append(x.rows.Composites, CompositeRow{Param: pp.p.Code, Parts: parts})
		}
	}
	return nil
}

// appendValues converts items to Values of type t.
func appendValues(dst []Value, t Type, items []fhirpath.Item) []Value {
	for _, it := range items {
		switch t {
		case TypeString:
			eachString(it, func(v StringValue) { dst = append(dst, Value{Type: t, String: v}) })
		case TypeToken:
			eachToken(it, func(v TokenValue) {
				if v.Code != "" || v.System != "" { // text-only rows serve :text, not composites
					dst = append(dst, Value{Type: t, Token: v})
				}
			})
		case TypeDate:
			eachDate(it, func(v DateRange) { dst = append(dst, Value{Type: t, Date: v}) })
		case TypeNumber:
			eachNumber(it, func(v NumberValue) { dst = append(dst, Value{Type: t, Number: v}) })
		case TypeQuantity:
			eachQuantity(it, func(v QuantityValue) { dst = append(dst, Value{Type: t, Quantity: v}) })
		case TypeReference:
			eachReference(it, func(v ReferenceValue) { dst = append(dst, Value{Type: t, Reference: v}) })
		case TypeURI:
			eachURI(it, func(v string) { dst = append(dst, Value{Type: t, URI: v}) })
		}
	}
	return dst
}
