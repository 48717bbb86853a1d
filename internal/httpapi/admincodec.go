package httpapi

import (
	"encoding/json"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/secrethash"
)

// DefaultAdminCodec checks that admin resources are JSON objects whose id
// (if any) matches the URL, stamps resourceType and id, and replaces a
// Client's secret with its argon2id hash. The authorization server supplies
// a stricter codec that validates every field.
type DefaultAdminCodec struct{}

// PrepareClient implements AdminCodec.
func (DefaultAdminCodec) PrepareClient(id string, body []byte) ([]byte, string, error) {
	m, err := adminObject("Client", id, body)
	if err != nil {
		return nil, "", err
	}
	var hash string
	if raw, ok := m["secret"]; ok {
		var secret string
		if json.Unmarshal(raw, &secret) != nil || secret == "" {
			return nil, "", fhir.Unprocessable("Client.secret must be a non-empty string")
		}
		if hash, err = secrethash.Hash(secret); err != nil {
			return nil, "", err
		}
		delete(m, "secret")
	}
	out, err := json.Marshal(m)
	return out, hash, err
}

// PreparePolicy implements AdminCodec.
func (DefaultAdminCodec) PreparePolicy(id string, body []byte) ([]byte, error) {
	m, err := adminObject("AccessPolicy", id, body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func adminObject(typ, id string, body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, fhir.Invalid("the body must be a JSON object (%s)", typ)
	}
	if raw, ok := m["id"]; ok {
		var got string
		if json.Unmarshal(raw, &got) != nil || got != id {
			return nil, fhir.Invalid("the body's id %s differs from the URL's id %q", raw, id)
		}
	}
	if raw, ok := m["resourceType"]; ok {
		var got string
		if json.Unmarshal(raw, &got) != nil || got != typ {
			return nil, fhir.Invalid("resourceType %s: this endpoint stores %s", raw, typ)
		}
	}
	m["id"], _ = json.Marshal(id)
	m["resourceType"], _ = json.Marshal(typ)
	return m, nil
}
