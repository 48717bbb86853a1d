package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/fhirgate/fhirgate/fhir"
)

// Engines fhirgate evaluates.
const (
	EngineAllow   = "allow"
	EngineMatcho  = "matcho"
	EngineComplex = "complex"
)

// otherEngines are Aidbox engines fhirgate refuses with a clear message.
var otherEngines = []string{"sql", "json-schema", "allow-rpc", "matcho-rpc", "signed-rpc", "smart-on-fhir", "clj"}

// Policy is a parsed AccessPolicy.
type Policy struct {
	ID     string
	Engine string
	// Clients are the ids of the Clients in "link"; empty means the policy
	// applies to every client.
	Clients []string
	rule    rule
	fields  map[string]json.RawMessage
}

// rule is a compiled engine configuration.
type rule interface {
	eval(obj map[string]any) bool
}

type allowRule struct{}

func (allowRule) eval(map[string]any) bool { return true }

type matchoRule struct{ m matcher }

func (r matchoRule) eval(obj map[string]any) bool { return r.m.match(obj) }

type complexRule struct {
	and  bool
	subs []rule
}

func (r complexRule) eval(obj map[string]any) bool {
	for _, s := range r.subs {
		if s.eval(obj) != r.and {
			return !r.and
		}
	}
	return r.and
}

func unprocessable(expr, format string, args ...any) *fhir.Error {
	e := fhir.Unprocessable(format, args...)
	e.Expression = []string{expr}
	return e
}

// Parse validates an AccessPolicy body (admin PUT /AccessPolicy/{id}).
// Errors are *fhir.Error: 400 when the body is not one JSON object, 422
// naming the field for anything else.
func Parse(body []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, fhir.Invalid("the AccessPolicy body must be one JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fhir.Invalid("the AccessPolicy body must be one JSON object")
	}
	p := &Policy{fields: fields}
	if err := p.parseIdentity(raw); err != nil {
		return nil, err
	}
	if err := p.parseLinks(raw["link"]); err != nil {
		return nil, err
	}
	r, engine, err := parseRule("", raw)
	if err != nil {
		return nil, err
	}
	p.rule, p.Engine = r, engine
	return p, nil
}

// ParseFor is Parse for PUT /AccessPolicy/{id}: the policy gets id, and a
// body "id" that differs is refused.
func ParseFor(id string, body []byte) (*Policy, error) {
	if !fhir.ValidID(id) {
		return nil, fhir.Invalid("%q is not a valid id", id)
	}
	p, err := Parse(body)
	if err != nil {
		return nil, err
	}
	if p.ID != "" && p.ID != id {
		return nil, unprocessable("id", "the body's id %q differs from the id %q in the URL", p.ID, id)
	}
	p.ID = id
	return p, nil
}

func (p *Policy) parseIdentity(raw map[string]any) error {
	if rt, ok := raw["resourceType"]; ok && rt != "AccessPolicy" {
		return unprocessable("resourceType", "resourceType must be \"AccessPolicy\"")
	}
	if id, ok := raw["id"]; ok {
		s, isStr := id.(string)
		if !isStr || !fhir.ValidID(s) {
			return unprocessable("id", "id must be a valid FHIR id")
		}
		p.ID = s
	}
	if d, ok := raw["description"]; ok {
		if _, isStr := d.(string); !isStr {
			return unprocessable("description", "description must be a string")
		}
	}
	return nil
}

func (p *Policy) parseLinks(v any) error {
	if v == nil {
		return nil
	}
	links, ok := v.([]any)
	if !ok {
		return unprocessable("link", "link must be an array of references {\"resourceType\": \"Client\", \"id\": ...}")
	}
	for i, l := range links {
		expr := fmt.Sprintf("link[%d]", i)
		ref, ok := l.(map[string]any)
		if !ok {
			return unprocessable(expr, "a link must be an object {\"resourceType\": \"Client\", \"id\": ...}")
		}
		if rt := ref["resourceType"]; rt != "Client" {
			return unprocessable(expr+".resourceType", "only links to Client are supported (User and Operation links are not)")
		}
		id, _ := ref["id"].(string)
		if !fhir.ValidID(id) {
			return unprocessable(expr+".id", "a link needs the id of a Client")
		}
		if !slices.Contains(p.Clients, id) {
			p.Clients = append(p.Clients, id)
		}
	}
	return nil
}

// parseRule reads "engine" and its configuration from obj; prefix locates
// obj inside a complex policy ("and[1].").
func parseRule(prefix string, obj map[string]any) (rule, string, error) {
	engine, _ := obj["engine"].(string)
	if err := checkForeignConfig(prefix, engine, obj); err != nil {
		return nil, "", err
	}
	switch engine {
	case EngineAllow:
		return allowRule{}, engine, nil
	case EngineMatcho:
		pattern, ok := obj["matcho"].(map[string]any)
		if !ok {
			return nil, "", unprocessable(prefix+"matcho", "engine matcho needs a \"matcho\" object (the pattern over the request)")
		}
		m, err := compile(prefix+"matcho", pattern)
		if err != nil {
			var ce *compileError
			if errors.As(err, &ce) {
				return nil, "", unprocessable(ce.path, "%s", ce.msg)
			}
			return nil, "", err
		}
		return matchoRule{m}, engine, nil
	case EngineComplex:
		r, err := parseComplex(prefix, obj)
		return r, engine, err
	case "":
		return nil, "", unprocessable(prefix+"engine", "engine is required: %q, %q or %q", EngineAllow, EngineMatcho, EngineComplex)
	}
	if slices.Contains(otherEngines, engine) {
		return nil, "", unprocessable(prefix+"engine", "engine %q is not supported by fhirgate; use %q, %q or %q", engine, EngineAllow, EngineMatcho, EngineComplex)
	}
	return nil, "", unprocessable(prefix+"engine", "unknown engine %q", engine)
}

// checkForeignConfig refuses configuration of another engine, so that a
// policy never means less than it appears to (an "allow" policy with a
// "matcho" pattern would otherwise allow everything).
func checkForeignConfig(prefix, engine string, obj map[string]any) error {
	owner := map[string]string{"matcho": EngineMatcho, "and": EngineComplex, "or": EngineComplex,
		"sql": "sql", "schema": "json-schema", "rpc": "allow-rpc"}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if e, ok := owner[k]; ok && e != engine {
			return unprocessable(prefix+k, "%q belongs to engine %q, but the engine is %q", k, e, engine)
		}
	}
	return nil
}

func parseComplex(prefix string, obj map[string]any) (rule, error) {
	andList, hasAnd := obj["and"]
	orList, hasOr := obj["or"]
	if hasAnd == hasOr {
		return nil, unprocessable(prefix+"engine", "engine complex needs exactly one of \"and\" and \"or\"")
	}
	key, list := "and", andList
	if hasOr {
		key, list = "or", orList
	}
	items, ok := list.([]any)
	if !ok || len(items) == 0 {
		return nil, unprocessable(prefix+key, "%q must be a non-empty array of rules", key)
	}
	r := complexRule{and: hasAnd}
	for i, item := range items {
		sub, ok := item.(map[string]any)
		subPrefix := fmt.Sprintf("%s%s[%d].", prefix, key, i)
		if !ok {
			return nil, unprocessable(subPrefix[:len(subPrefix)-1], "a rule must be an object with an engine")
		}
		s, _, err := parseRule(subPrefix, sub)
		if err != nil {
			return nil, err
		}
		r.subs = append(r.subs, s)
	}
	return r, nil
}

// Global reports whether the policy applies to every client (no link).
func (p *Policy) Global() bool { return len(p.Clients) == 0 }

// JSON renders the policy as stored and returned by the admin API: the
// body's fields with resourceType and id set.
func (p *Policy) JSON() ([]byte, error) {
	out := make(map[string]json.RawMessage, len(p.fields)+2)
	for k, v := range p.fields {
		out[k] = v
	}
	out["resourceType"] = json.RawMessage(`"AccessPolicy"`)
	if p.ID != "" {
		id, _ := json.Marshal(p.ID)
		out["id"] = id
	}
	return json.Marshal(out)
}
