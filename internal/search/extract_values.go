package search

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/fhirgate/fhirgate/internal/fhirpath"
)

// The each* functions turn one selected element into index values, by the
// element's shape, following the table of R4 search.html#table ("Search
// parameter types and the data types they apply to"). Elements of a shape a
// parameter type does not cover yield nothing.

// stringParts are the string elements of HumanName and Address that string
// search covers (R4 search.html#string).
var stringParts = []string{"text", "family", "given", "prefix", "suffix",
	"line", "city", "district", "state", "postalCode", "country"}

func eachString(it fhirpath.Item, emit func(StringValue)) {
	switch v := it.Value.(type) {
	case string:
		emit(StringValue{Norm: Normalize(v), Exact: v})
	case map[string]any:
		for _, k := range stringParts {
			switch s := v[k].(type) {
			case string:
				emit(StringValue{Norm: Normalize(s), Exact: s})
			case []any:
				for _, x := range s {
					if s, ok := x.(string); ok {
						emit(StringValue{Norm: Normalize(s), Exact: s})
					}
				}
			}
		}
	}
}

func eachToken(it fhirpath.Item, emit func(TokenValue)) {
	switch v := it.Value.(type) {
	case string:
		emit(TokenValue{Code: v})
	case bool:
		if v {
			emit(TokenValue{Code: "true"})
		} else {
			emit(TokenValue{Code: "false"})
		}
	case json.Number:
		emit(TokenValue{Code: string(v)})
	case map[string]any:
		tokenObject(v, emit)
	}
}

// tokenObject handles CodeableConcept (each Coding, and its text), Coding,
// Identifier and ContactPoint (system and value).
func tokenObject(v map[string]any, emit func(TokenValue)) {
	codings, isCC := v["coding"].([]any)
	text, hasText := v["text"].(string)
	if isCC || (hasText && v["code"] == nil && v["value"] == nil) {
		for _, c := range codings {
			if cm, ok := c.(map[string]any); ok {
				codingToken(cm, emit)
			}
		}
		if hasText {
			emit(TokenValue{Text: Normalize(text)})
		}
		return
	}
	if value, ok := v["value"].(string); ok {
		sys, _ := v["system"].(string)
		tv := TokenValue{System: sys, Code: value}
		if typ, ok := v["type"].(map[string]any); ok {
			if t, ok := typ["text"].(string); ok {
				tv.Text = Normalize(t)
			}
		}
		emit(tv)
		return
	}
	codingToken(v, emit)
}

func codingToken(c map[string]any, emit func(TokenValue)) {
	sys, _ := c["system"].(string)
	code, _ := c["code"].(string)
	display, _ := c["display"].(string)
	if sys == "" && code == "" {
		return
	}
	emit(TokenValue{System: sys, Code: code, Text: Normalize(display)})
}

func eachDate(it fhirpath.Item, emit func(DateRange)) {
	switch v := it.Value.(type) {
	case string:
		if r, err := ParseDateRange(v); err == nil {
			emit(r)
		}
	case map[string]any:
		if _, ok := v["start"]; ok {
			periodRange(v, emit)
		} else if _, ok := v["end"]; ok {
			periodRange(v, emit)
		} else {
			timingRanges(v, emit)
		}
	}
}

// periodRange covers start to end; a missing end is open (R4
// datatypes.html#Period: "the period is ongoing").
func periodRange(p map[string]any, emit func(DateRange)) {
	r := DateRange{Low: MinDate, High: MaxDate}
	ok := false
	if s, _ := p["start"].(string); s != "" {
		if d, err := ParseDateRange(s); err == nil {
			r.Low, ok = d.Low, true
		}
	}
	if s, _ := p["end"].(string); s != "" {
		if d, err := ParseDateRange(s); err == nil {
			r.High, ok = d.High, true
		}
	}
	if ok && r.Low <= r.High {
		emit(r)
	}
}

// timingRanges covers Timing: each event, and the repeat bounds period.
func timingRanges(t map[string]any, emit func(DateRange)) {
	if events, ok := t["event"].([]any); ok {
		for _, e := range events {
			if s, ok := e.(string); ok {
				if r, err := ParseDateRange(s); err == nil {
					emit(r)
				}
			}
		}
	}
	if rep, ok := t["repeat"].(map[string]any); ok {
		if b, ok := rep["boundsPeriod"].(map[string]any); ok {
			periodRange(b, emit)
		}
	}
}

func eachNumber(it fhirpath.Item, emit func(NumberValue)) {
	switch v := it.Value.(type) {
	case json.Number:
		if n, err := ParseNumber(string(v)); err == nil {
			emit(n)
		}
	case map[string]any:
		if n, ok := rangeBounds(v); ok {
			emit(n)
		}
	}
}

// rangeBounds reads a Range: [low, high], open where a bound is missing.
func rangeBounds(v map[string]any) (NumberValue, bool) {
	lo, hasLo := v["low"].(map[string]any)
	hi, hasHi := v["high"].(map[string]any)
	if !hasLo && !hasHi {
		return NumberValue{}, false
	}
	n := NumberValue{Low: math.Inf(-1), High: math.Inf(1)}
	if l, ok := quantityNumber(lo); ok {
		n.Low = l.Value
	}
	if h, ok := quantityNumber(hi); ok {
		n.High = h.Value
	}
	n.Value = (n.Low + n.High) / 2
	return n, true
}

func quantityNumber(q map[string]any) (NumberValue, bool) {
	num, ok := q["value"].(json.Number)
	if !ok {
		return NumberValue{}, false
	}
	n, err := ParseNumber(string(num))
	return n, err == nil
}

// iso4217 is the system of Money currencies (R4 datatypes.html#Money).
const iso4217 = "urn:iso:std:iso:4217"

func eachQuantity(it fhirpath.Item, emit func(QuantityValue)) {
	v, ok := it.Value.(map[string]any)
	if !ok {
		return
	}
	if n, ok := quantityNumber(v); ok {
		q := QuantityValue{NumberValue: n}
		q.System, _ = v["system"].(string)
		q.Code, _ = v["code"].(string)
		q.Unit, _ = v["unit"].(string)
		if cur, ok := v["currency"].(string); ok {
			q.System, q.Code = iso4217, cur
		}
		canonicalize(&q)
		emit(q)
		return
	}
	if n, ok := rangeBounds(v); ok {
		q := QuantityValue{NumberValue: n}
		for _, k := range []string{"low", "high"} {
			if b, ok := v[k].(map[string]any); ok && q.Code == "" {
				q.System, _ = b["system"].(string)
				q.Code, _ = b["code"].(string)
				q.Unit, _ = b["unit"].(string)
			}
		}
		canonicalize(&q)
		emit(q)
	}
}

func eachReference(it fhirpath.Item, emit func(ReferenceValue)) {
	switch v := it.Value.(type) {
	case string: // canonical or uri
		if r, ok := ParseReference(v); ok {
			emit(r)
		}
	case map[string]any:
		if ref, ok := v["reference"].(string); ok {
			if r, ok := ParseReference(ref); ok {
				emit(r)
			}
			return
		}
		// A resource selected in place, e.g. Bundle.entry[0].resource.
		rt, _ := v["resourceType"].(string)
		id, _ := v["id"].(string)
		if rt != "" && id != "" {
			emit(ReferenceValue{Type: rt, ID: id})
		}
	}
}

// ParseReference reads a literal reference or canonical into a
// ReferenceValue: "Patient/1" (or .../_history/2) gives Type and ID; an
// absolute URL or URN gives URL, plus Type and ID when it ends in Type/id;
// a canonical's "|version" is dropped. Local "#id" references and
// malformed relative ones give ok false.
func ParseReference(ref string) (ReferenceValue, bool) {
	if ref == "" || ref[0] == '#' {
		return ReferenceValue{}, false
	}
	if i := strings.IndexByte(ref, '|'); i >= 0 {
		ref = ref[:i]
	}
	typ, id, ok := fhirpath.SplitReference(ref)
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "urn:") {
		return ReferenceValue{Type: typ, ID: id, URL: ref}, true
	}
	if !ok || strings.Count(strings.SplitN(ref, "/_history/", 2)[0], "/") != 1 {
		return ReferenceValue{}, false
	}
	return ReferenceValue{Type: typ, ID: id}, true
}

func eachURI(it fhirpath.Item, emit func(string)) {
	if s, ok := it.Value.(string); ok {
		emit(s)
	}
}
