// Package resource parses the top level of a FHIR JSON resource once and
// renders it back with the members the server owns (id, meta.versionId,
// meta.lastUpdated) set, keeping every other member byte for byte.
//
// fhirgate stores each version as these rendered bytes, so reads, history and
// Bulk Data export stream them without decoding or re-encoding (R4
// http.html#read, Bulk Data IG 2.0 export.html). The output is compact JSON
// with resourceType, id and meta first, as FHIR JSON examples order them
// (R4 json.html); other members keep the client's order.
package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// Resource is a parsed FHIR resource: its type, its id (empty when the
// client gave none) and its other top-level members in order.
type Resource struct {
	Type string
	ID   string
	// meta holds the members of meta other than versionId and lastUpdated.
	meta []member
	rest []member
	// Prepared holds work a store may do ahead of the write, outside its
	// transaction (sqlstore puts the search index rows here, so that
	// extraction runs in the callers' goroutines instead of the single
	// SQLite writer). Set clears it, as the work no longer fits.
	Prepared any
}

type member struct {
	name  string
	value json.RawMessage
}

// Parse validates body as one JSON object with a string resourceType and
// parses its top level. It refuses duplicate members, a non-string id and a
// meta that is not an object; deeper validation is not its job.
func Parse(body []byte) (*Resource, error) {
	var compact bytes.Buffer
	compact.Grow(len(body))
	if err := json.Compact(&compact, body); err != nil {
		return nil, fmt.Errorf("body is not valid JSON: %w", err)
	}
	members, err := parseObject(compact.Bytes())
	if err != nil {
		return nil, err
	}
	r := &Resource{}
	var haveType bool
	for _, m := range members {
		switch m.name {
		case "resourceType":
			if err := json.Unmarshal(m.value, &r.Type); err != nil || r.Type == "" {
				return nil, errors.New("resourceType must be a non-empty string")
			}
			haveType = true
		case "id":
			if err := json.Unmarshal(m.value, &r.ID); err != nil {
				return nil, errors.New("id must be a string")
			}
		case "meta":
			if r.meta, err = parseMeta(m.value); err != nil {
				return nil, err
			}
		default:
			r.rest = append(r.rest, m)
		}
	}
	if !haveType {
		return nil, errors.New("resourceType is missing: a FHIR resource is a JSON object with a resourceType member")
	}
	return r, nil
}

func parseMeta(raw json.RawMessage) ([]member, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, errors.New("meta must be a JSON object")
	}
	all, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	kept := all[:0]
	for _, m := range all {
		if m.name != "versionId" && m.name != "lastUpdated" {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

// parseObject splits one compact, already validated JSON object into its
// members. Validation is json.Compact's job; this scanner only finds the
// boundaries of each member, which is several times faster than
// json.Decoder's token API on the write path.
func parseObject(b []byte) ([]member, error) {
	if len(b) < 2 || b[0] != '{' {
		return nil, errors.New("a FHIR resource must be a JSON object")
	}
	out := make([]member, 0, 16)
	i := 1
	for i < len(b) && b[i] != '}' {
		if b[i] == ',' {
			i++
		}
		kEnd := skipString(b, i)
		name, err := unquote(b[i:kEnd])
		if err != nil {
			return nil, err
		}
		vStart := kEnd + 1 // past ':'
		vEnd := skipValue(b, vStart)
		v := json.RawMessage(b[vStart:vEnd])
		if string(v) == "null" {
			return nil, fmt.Errorf("member %q is null: FHIR JSON leaves absent elements out", name)
		}
		for _, m := range out {
			if m.name == name {
				return nil, fmt.Errorf("member %q appears twice", name)
			}
		}
		out = append(out, member{name, v})
		i = vEnd
	}
	if i != len(b)-1 {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return out, nil
}

func unquote(s []byte) (string, error) {
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s[1 : len(s)-1]), nil
	}
	var name string
	err := json.Unmarshal(s, &name)
	return name, err
}

// skipString returns the index just past the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the compact JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null: up to the next delimiter
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}

// Get returns the raw JSON of a top-level member other than resourceType,
// id and meta, or nil.
func (r *Resource) Get(name string) json.RawMessage {
	for _, m := range r.rest {
		if m.name == name {
			return m.value
		}
	}
	return nil
}

// Set replaces or appends a top-level member; value must be valid compact JSON.
func (r *Resource) Set(name string, value json.RawMessage) {
	r.Prepared = nil
	for i := range r.rest {
		if r.rest[i].name == name {
			r.rest[i].value = value
			return
		}
	}
	r.rest = append(r.rest, member{name, value})
}

// MetaMember returns the raw JSON of a member of meta other than versionId and
// lastUpdated (profile, tag, security, source), or nil.
func (r *Resource) MetaMember(name string) json.RawMessage {
	for _, m := range r.meta {
		if m.name == name {
			return m.value
		}
	}
	return nil
}

// Render returns the resource as compact JSON with id, meta.versionId and
// meta.lastUpdated set by the server.
func (r *Resource) Render(versionID int64, lastUpdated time.Time) []byte {
	n := len(r.Type) + len(r.ID) + 96
	for _, m := range r.rest {
		n += len(m.name) + len(m.value) + 4
	}
	for _, m := range r.meta {
		n += len(m.name) + len(m.value) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, `{"resourceType":`...)
	b = strconv.AppendQuote(b, r.Type)
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = strconv.AppendQuote(b, r.ID)
	}
	b = append(b, `,"meta":{"versionId":"`...)
	b = strconv.AppendInt(b, versionID, 10)
	b = append(b, `","lastUpdated":"`...)
	b = append(b, fhir.FormatInstant(lastUpdated)...)
	b = append(b, '"')
	b = appendMembers(b, r.meta)
	b = append(b, '}')
	b = appendMembers(b, r.rest)
	return append(b, '}')
}

func appendMembers(b []byte, ms []member) []byte {
	for _, m := range ms {
		b = append(b, ',')
		b = appendJSONString(b, m.name)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return b
}

// appendJSONString appends s as a JSON string. Member names come from a
// parsed JSON document, so quoting them with encoding/json's rules keeps the
// output valid whatever they hold.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
