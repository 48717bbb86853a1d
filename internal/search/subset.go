package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/fhirgate/fhirgate/internal/fhirpath"
)

// Subset returns body, a JSON resource of resourceType, reduced as
// _summary or _elements ask (R4 search.html#summary, #elements). When
// elements is not empty it wins over summary. Kept always are resourceType,
// id, meta and the mandatory elements; an element's primitive extension
// (_name) goes with it; a choice element is named without its type
// ("value" keeps valueQuantity). When anything is removed, meta.tag gets
// the SUBSETTED code of v3-ObservationValue, as the spec asks. The member
// order of body is preserved; when nothing is removed, body is returned.
// _summary=count returns no resources at all, which is the caller's concern.
func Subset(resourceType string, body []byte, summary Summary, elements []string) ([]byte, error) {
	keep := keepFunc(resourceType, summary, elements)
	if keep == nil {
		return body, nil
	}
	ms, err := members(body)
	if err != nil {
		return nil, err
	}
	out := ms[:0:0]
	for _, m := range ms {
		if keep(m.key) {
			out = append(out, m)
		}
	}
	if len(out) == len(ms) {
		return body, nil
	}
	if out, err = markSubsetted(out); err != nil {
		return nil, err
	}
	return render(out), nil
}

// keepFunc decides which top-level members stay; nil keeps all.
func keepFunc(resourceType string, summary Summary, elements []string) func(string) bool {
	base := []string{"resourceType", "id", "meta"}
	var names []string
	switch {
	case len(elements) > 0:
		names = slices.Concat(base, MandatoryElements(resourceType), elements)
	case summary == SummaryTrue:
		names = slices.Concat(base, SummaryElements(resourceType))
	case summary == SummaryText:
		names = slices.Concat(base, []string{"text"}, MandatoryElements(resourceType))
	case summary == SummaryData:
		return func(k string) bool { return k != "text" && k != "_text" }
	default:
		return nil
	}
	return func(k string) bool {
		if k != "_" && len(k) > 1 && k[0] == '_' {
			k = k[1:]
		}
		for _, n := range names {
			if k == n {
				return true
			}
			if _, ok := fhirpath.ChoiceKey(n, k); ok {
				return true
			}
		}
		return false
	}
}

type member struct {
	key string
	raw []byte
}

// members lists the top-level members of a JSON object in order.
func members(body []byte) ([]member, error) {
	d := decoder{b: body}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, fmt.Errorf("search: subset: not a JSON object")
	}
	d.i++
	var out []member
	for {
		d.space()
		if d.i < len(d.b) && d.b[d.i] == '}' && len(out) == 0 {
			return out, nil
		}
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, fmt.Errorf("search: subset: %w", d.errorf("want a member name"))
		}
		k, err := d.str()
		if err != nil {
			return nil, fmt.Errorf("search: subset: %w", err)
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, fmt.Errorf("search: subset: %w", d.errorf("want ':'"))
		}
		d.i++
		d.space()
		start := d.i
		if _, err := d.value(1); err != nil {
			return nil, fmt.Errorf("search: subset: %w", err)
		}
		out = append(out, member{key: k, raw: body[start:d.i]})
		d.space()
		if d.i < len(d.b) && d.b[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.b) && d.b[d.i] == '}' {
			return out, nil
		}
		return nil, fmt.Errorf("search: subset: %w", d.errorf("want ',' or '}'"))
	}
}

// subsettedTag is the meta.tag of a subsetted resource.
var subsettedTag = map[string]any{"system": SubsettedSystem, "code": SubsettedCode, "display": "subsetted"}

// markSubsetted adds the SUBSETTED tag to meta, creating meta after id
// (or after resourceType) when absent.
func markSubsetted(ms []member) ([]member, error) {
	for i, m := range ms {
		if m.key != "meta" {
			continue
		}
		var meta map[string]any
		if err := json.Unmarshal(m.raw, &meta); err != nil || meta == nil {
			return nil, fmt.Errorf("search: subset: meta is not an object")
		}
		tags, _ := meta["tag"].([]any)
		for _, t := range tags {
			if tm, ok := t.(map[string]any); ok && tm["system"] == SubsettedSystem && tm["code"] == SubsettedCode {
				return ms, nil
			}
		}
		meta["tag"] = append(tags, subsettedTag)
		raw, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("search: subset: %w", err)
		}
		ms[i].raw = raw
		return ms, nil
	}
	raw, _ := json.Marshal(map[string]any{"tag": []any{subsettedTag}})
	at := 0
	for i, m := range ms {
		if m.key == "resourceType" || m.key == "id" {
			at = i + 1
		}
	}
	return slices.Insert(ms, at, member{key: "meta", raw: raw}), nil
}

func render(ms []member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.raw)
	}
	b.WriteByte('}')
	return b.Bytes()
}
