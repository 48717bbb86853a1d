package fhirapi

import (
	"context"
	"encoding/json"
	"net/url"
	"sort"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/store"
)

// ConditionalMatcher finds the live resources of a type that match the
// search criteria of a conditional interaction (R4 http.html#ccreate). It
// runs inside the write transaction, so a check and the write that depends
// on it are atomic.
type ConditionalMatcher interface {
	Match(ctx context.Context, tx store.Tx, typ string, criteria url.Values) ([]*store.Version, error)
}

// parseCriteria reads the criteria of a conditional header or URL: a query
// string, optionally written as "Type?query" or "?query".
func parseCriteria(typ, raw, what string) (url.Values, error) {
	q := strings.TrimPrefix(raw, typ)
	q = strings.TrimPrefix(q, "?")
	vals, err := url.ParseQuery(q)
	if err != nil || len(vals) == 0 {
		return nil, fhir.Invalid("%s %q: want search parameters such as identifier=system|value", what, raw)
	}
	return vals, nil
}

// matchOne resolves conditional criteria to at most one resource: nil when
// none matches, 412 when several do (R4 http.html#ccreate).
func (s *Service) matchOne(ctx context.Context, tx store.Tx, typ, raw, what string) (*store.Version, error) {
	criteria, err := parseCriteria(typ, raw, what)
	if err != nil {
		return nil, err
	}
	// Serialize conditional writes on the same criteria across processes,
	// so two concurrent conditional creates cannot both create.
	if err := tx.Lock(ctx, typ+"?"+canonicalQuery(criteria)); err != nil {
		return nil, err
	}
	found, err := s.conditional.Match(ctx, tx, typ, criteria)
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	return nil, fhir.PreconditionFailed("%s %q matches %d resources; it must match at most one", what, raw, len(found))
}

func canonicalQuery(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vals := append([]string(nil), v[k]...)
		sort.Strings(vals)
		for _, x := range vals {
			b.WriteString(k + "=" + x + "&")
		}
	}
	return b.String()
}

// basicMatcher understands _id and identifier, the criteria conditional
// create needs before the search index exists. identifier is matched by
// scanning the type, which is correct but linear in its size.
type basicMatcher struct{}

func (basicMatcher) Match(ctx context.Context, tx store.Tx, typ string, criteria url.Values) ([]*store.Version, error) {
	for name := range criteria {
		if name != "_id" && name != "identifier" {
			return nil, fhir.Invalid("conditional criteria: parameter %q is not supported here; use _id or identifier", name)
		}
	}
	var out []*store.Version
	if ids, ok := criteria["_id"]; ok {
		for _, id := range ids {
			if strings.Contains(id, ",") || !fhir.ValidID(id) {
				return nil, fhir.Invalid("conditional criteria: _id=%q is not a single valid id", id)
			}
		}
		v, err := tx.Read(ctx, typ, ids[0])
		if err != nil {
			return nil, nil // unknown or deleted: no match
		}
		for _, id := range ids[1:] {
			if id != ids[0] {
				return nil, nil
			}
		}
		if !matchesIdentifiers(v.Body, criteria["identifier"]) {
			return nil, nil
		}
		return []*store.Version{v}, nil
	}
	// Collect the ids first: a transaction's connection runs one query at
	// a time, so the reads wait until the scan is done.
	var ids []string
	err := tx.ScanType(ctx, typ, func(id string, body []byte) bool {
		if matchesIdentifiers(body, criteria["identifier"]) {
			ids = append(ids, id)
		}
		return len(ids) <= 1 // two matches already decide the outcome
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		v, err := tx.Read(ctx, typ, id)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// matchesIdentifiers reports whether body's identifier list satisfies every
// parameter value (AND); each value is a comma-separated OR of token forms
// system|value, |value, system| and value (R4 search.html#token).
func matchesIdentifiers(body []byte, params []string) bool {
	if len(params) == 0 {
		return true
	}
	var r struct {
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
	}
	if json.Unmarshal(body, &r) != nil {
		return false
	}
	for _, p := range params {
		ok := false
		for _, alt := range strings.Split(p, ",") {
			system, value, hasBar := strings.Cut(alt, "|")
			if !hasBar {
				system, value = "", alt
			}
			for _, id := range r.Identifier {
				switch {
				case !hasBar && id.Value == value,
					hasBar && system == "" && id.System == "" && id.Value == value,
					hasBar && value == "" && id.System == system,
					hasBar && system != "" && value != "" && id.System == system && id.Value == value:
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
