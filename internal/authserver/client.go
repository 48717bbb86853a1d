package authserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/smart"
)

// Grant types a Client may hold (Aidbox Client.grant_types).
const (
	// GrantClientCredentials lets the client obtain tokens at /auth/token.
	GrantClientCredentials = smart.GrantClientCredentials
	// GrantBasic lets the client call /fhir directly with HTTP Basic
	// client_id:secret, Aidbox style; it is not a SMART profile.
	GrantBasic = "basic"
)

// DefaultAccessTokenLifetime is used when a client does not set
// auth.client_credentials.access_token_expiration (SMART Backend Services
// recommends 300 s).
const DefaultAccessTokenLifetime = 300 * time.Second

// maxSecretBytes bounds a registered secret, which is hashed with a slow
// function.
const maxSecretBytes = 512

// Client is a registered client as the authorization server uses it. It is
// built from the Aidbox-shaped Client JSON (seed
// aidbox-smart-backend-services.md) by ParseClient or LoadClient.
type Client struct {
	ID     string
	Type   string
	Active bool
	// GrantTypes holds GrantClientCredentials and/or GrantBasic.
	GrantTypes []string
	// AssertionTypes are the allowed client_assertion_type values
	// (auth.client_credentials.client_assertion_types). When the
	// registration omits them but registers keys, the JWT bearer type is
	// implied.
	AssertionTypes []string
	// AccessTokenLifetime is auth.client_credentials.access_token_expiration
	// (DefaultAccessTokenLifetime when absent); the server caps it.
	AccessTokenLifetime time.Duration
	// Scope is the ceiling: the scopes the client may ever be granted.
	Scope smart.Scopes
	// JWKSURI or JWKS hold the client's public keys (at most one is set).
	JWKSURI string
	JWKS    *jwks.Set
	// SecretHash is the argon2id PHC string of the client's secret, or "".
	// It is stored apart from the JSON and never rendered.
	SecretHash string
	// Registration identifies this registration of the id, as the store
	// reports it (RegisteredClientStore): its tokens carry it and die when
	// the client is deleted and registered again. "" when the store cannot
	// tell. It is not part of the JSON.
	Registration string

	secret string // plaintext from a registration body until StorageForm
	fields map[string]json.RawMessage
}

// HasGrant reports whether the client holds grant type g.
func (c *Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// HasKeys reports whether public keys are registered.
func (c *Client) HasKeys() bool { return c.JWKSURI != "" || c.JWKS != nil }

// AcceptsAssertionType reports whether the client may authenticate with
// client_assertion_type t.
func (c *Client) AcceptsAssertionType(t string) bool {
	return c.HasKeys() && slices.Contains(c.AssertionTypes, t)
}

// BasicScopes are the scopes of a request authenticated with HTTP Basic
// (grant "basic"): the registered ceiling, or every system scope when the
// client registered none, as an Aidbox Basic client is governed by
// AccessPolicy alone.
func (c *Client) BasicScopes() smart.Scopes {
	if len(c.Scope) > 0 {
		return c.Scope
	}
	return smart.Scopes{{Context: smart.ContextSystem, ResourceType: smart.WildcardType, Permissions: smart.PermAll}}
}

// unprocessable is the 422 answer for a Client that breaks a rule; the
// expression names the field (FHIRPath-like, as OperationOutcome wants).
func unprocessable(expr, format string, args ...any) *fhir.Error {
	e := fhir.Unprocessable(format, args...)
	e.Expression = []string{expr}
	return e
}

// ParseClient validates a Client registration body (admin PUT /Client/{id})
// and returns the client. The body's "secret", if any, is kept in memory
// only until StorageForm hashes it. Errors are *fhir.Error: 400 for a body
// that is not a JSON object, 422 naming the field for a rule broken.
func ParseClient(body []byte) (*Client, error) {
	return parseClient(body, true)
}

// ParseClientFor is ParseClient for PUT /Client/{id}: the client gets id,
// and a body "id" that differs is refused.
func ParseClientFor(id string, body []byte) (*Client, error) {
	if !fhir.ValidID(id) {
		return nil, fhir.Invalid("%q is not a valid id", id)
	}
	c, err := parseClient(body, true)
	if err != nil {
		return nil, err
	}
	if c.ID != "" && c.ID != id {
		return nil, unprocessable("id", "the body's id %q differs from the id %q in the URL", c.ID, id)
	}
	c.ID = id
	return c, nil
}

// LoadClient rebuilds a client from what the store keeps: the JSON written
// by StorageForm and the secret hash kept beside it.
func LoadClient(doc []byte, secretHash string) (*Client, error) {
	c, err := parseClient(doc, false)
	if err != nil {
		return nil, err
	}
	if c.secretFieldSeen() {
		return nil, fmt.Errorf("authserver: stored client %q holds a secret", c.ID)
	}
	c.SecretHash = secretHash
	if err := c.checkCombination(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) secretFieldSeen() bool {
	_, ok := c.fields["secret"]
	return ok
}

func parseClient(body []byte, registration bool) (*Client, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil || dec.More() {
		return nil, fhir.Invalid("the Client body must be one JSON object")
	}
	c := &Client{Active: true, AccessTokenLifetime: DefaultAccessTokenLifetime, fields: fields}
	for _, step := range []func(*Client, map[string]json.RawMessage) error{
		parseIdentity, parseGrants, parseAuth, parseScope, parseKeys, parseSecret,
	} {
		if err := step(c, fields); err != nil {
			return nil, err
		}
	}
	if registration {
		if err := c.checkCombination(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// field decodes fields[name] into v when present; a JSON type mismatch is
// a 422 naming the field.
func field(fields map[string]json.RawMessage, name string, v any, what string) (bool, error) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, unprocessable(name, "%s must be %s", name, what)
	}
	return true, nil
}

func parseIdentity(c *Client, f map[string]json.RawMessage) error {
	var rt string
	if ok, err := field(f, "resourceType", &rt, "a string"); err != nil {
		return err
	} else if ok && rt != "Client" {
		return unprocessable("resourceType", "resourceType must be \"Client\"")
	}
	if ok, err := field(f, "id", &c.ID, "a string"); err != nil {
		return err
	} else if ok && !fhir.ValidID(c.ID) {
		return unprocessable("id", "id %q is not a valid FHIR id", c.ID)
	}
	if _, err := field(f, "type", &c.Type, "a string"); err != nil {
		return err
	}
	_, err := field(f, "active", &c.Active, "true or false")
	return err
}

func parseGrants(c *Client, f map[string]json.RawMessage) error {
	if _, err := field(f, "grant_types", &c.GrantTypes, "an array of strings"); err != nil {
		return err
	}
	if len(c.GrantTypes) == 0 {
		return unprocessable("grant_types", "grant_types must hold %q and/or %q", GrantClientCredentials, GrantBasic)
	}
	for i, g := range c.GrantTypes {
		if g != GrantClientCredentials && g != GrantBasic {
			return unprocessable(fmt.Sprintf("grant_types[%d]", i),
				"grant type %q is not supported; fhirgate offers %q and %q", g, GrantClientCredentials, GrantBasic)
		}
	}
	return nil
}

type clientCredentialsAuth struct {
	AssertionTypes *[]string       `json:"client_assertion_types"`
	Expiration     json.RawMessage `json:"access_token_expiration"`
	TokenFormat    *string         `json:"token_format"`
}

func parseAuth(c *Client, f map[string]json.RawMessage) error {
	var auth map[string]json.RawMessage
	if _, err := field(f, "auth", &auth, "an object"); err != nil {
		return err
	}
	var cc clientCredentialsAuth
	const prefix = "auth.client_credentials"
	if raw, ok := auth["client_credentials"]; ok {
		if err := json.Unmarshal(raw, &cc); err != nil {
			return unprocessable(prefix, "%s must be an object with client_assertion_types (strings), access_token_expiration (seconds) and token_format", prefix)
		}
	}
	if cc.AssertionTypes != nil {
		c.AssertionTypes = *cc.AssertionTypes
		for i, t := range c.AssertionTypes {
			if t != smart.AssertionTypeJWTBearer {
				return unprocessable(fmt.Sprintf("%s.client_assertion_types[%d]", prefix, i),
					"client assertion type %q is not supported; use %q", t, smart.AssertionTypeJWTBearer)
			}
		}
	}
	if len(cc.Expiration) > 0 && string(cc.Expiration) != "null" {
		var secs int64
		if err := json.Unmarshal(cc.Expiration, &secs); err != nil || secs <= 0 || secs > 86400 {
			return unprocessable(prefix+".access_token_expiration", "access_token_expiration must be a whole number of seconds from 1 to 86400")
		}
		c.AccessTokenLifetime = time.Duration(secs) * time.Second
	}
	if cc.TokenFormat != nil && *cc.TokenFormat != "jwt" {
		return unprocessable(prefix+".token_format", "token_format %q is not supported; fhirgate issues \"jwt\" tokens", *cc.TokenFormat)
	}
	return nil
}

func parseScope(c *Client, f map[string]json.RawMessage) error {
	var list []string
	if _, err := field(f, "scope", &list, "an array of strings"); err != nil {
		return err
	}
	for i, s := range list {
		sc, err := smart.ParseScope(s)
		if err == nil && sc.Context != smart.ContextSystem {
			err = fmt.Errorf("only system/ scopes can be registered for a backend client")
		}
		if err != nil {
			return unprocessable(fmt.Sprintf("scope[%d]", i), "scope %q: %v", s, unwrapScope(err))
		}
		c.Scope = append(c.Scope, sc)
	}
	c.Scope = c.Scope.Normalize()
	return nil
}

func unwrapScope(err error) string {
	if se, ok := err.(*smart.ScopeError); ok {
		return se.Reason
	}
	return err.Error()
}

func parseKeys(c *Client, f map[string]json.RawMessage) error {
	if ok, err := field(f, "jwks_uri", &c.JWKSURI, "a string"); err != nil {
		return err
	} else if ok {
		if err := checkJWKSURI(c.JWKSURI); err != nil {
			return err
		}
	}
	raw, ok := f["jwks"]
	if !ok || string(raw) == "null" {
		return nil
	}
	if c.JWKSURI != "" {
		return unprocessable("jwks", "give either jwks_uri (preferred) or jwks, not both")
	}
	set, err := jwks.ParseRegisteredSet(raw)
	if err != nil {
		return keySetError(err)
	}
	c.JWKS = set
	return nil
}

func keySetError(err error) error {
	se, ok := err.(*jwks.SetError)
	if !ok || se.Index < 0 {
		return unprocessable("jwks", "jwks must be a JWK Set {\"keys\": [...]} with at least one key: %v", err)
	}
	expr := fmt.Sprintf("jwks.keys[%d]", se.Index)
	if m := se.Member(); m != "" {
		expr += "." + m
	}
	return unprocessable(expr, "%v", se.Err)
}

func checkJWKSURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return unprocessable("jwks_uri", "jwks_uri must be an absolute https URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return unprocessable("jwks_uri", "jwks_uri must use https")
	case u.User != nil:
		return unprocessable("jwks_uri", "jwks_uri must not carry credentials")
	case u.Fragment != "":
		return unprocessable("jwks_uri", "jwks_uri must not have a fragment")
	}
	return nil
}

func parseSecret(c *Client, f map[string]json.RawMessage) error {
	ok, err := field(f, "secret", &c.secret, "a string")
	if err != nil {
		return err
	}
	if ok && (c.secret == "" || len(c.secret) > maxSecretBytes) {
		return unprocessable("secret", "secret must be 1 to %d bytes", maxSecretBytes)
	}
	return nil
}

// checkCombination enforces the rules that tie fields together.
func (c *Client) checkCombination() error {
	hasSecret := c.secret != "" || c.SecretHash != ""
	if c.HasGrant(GrantBasic) && !hasSecret {
		return unprocessable("secret", "grant type %q needs a secret", GrantBasic)
	}
	if c.AssertionTypes == nil && c.HasKeys() {
		c.AssertionTypes = []string{smart.AssertionTypeJWTBearer}
	}
	if len(c.AssertionTypes) > 0 && !c.HasKeys() {
		return unprocessable("jwks_uri", "a client that authenticates with a JWT assertion needs jwks_uri or jwks")
	}
	if c.HasGrant(GrantClientCredentials) && !c.HasKeys() && !hasSecret {
		return unprocessable("jwks_uri", "grant type %q needs jwks_uri, jwks or a secret to authenticate with", GrantClientCredentials)
	}
	return nil
}

// StorageForm returns what the store keeps for the client: the JSON of the
// registration without "secret" (with resourceType and id set), and the
// argon2id PHC hash of the secret separately ("" when the registration has
// no secret; the admin layer may then keep the previous hash). The secret
// is dropped from memory.
func (c *Client) StorageForm() (doc []byte, secretHash string, err error) {
	if c.secret != "" {
		if secretHash, err = HashSecret(c.secret); err != nil {
			return nil, "", err
		}
		c.SecretHash, c.secret = secretHash, ""
	}
	doc, err = c.JSON()
	return doc, secretHash, err
}

// JSON renders the client as the admin API returns it: the registration's
// fields, never the secret or its hash.
func (c *Client) JSON() ([]byte, error) {
	out := make(map[string]json.RawMessage, len(c.fields)+2)
	for k, v := range c.fields {
		out[k] = v
	}
	delete(out, "secret")
	out["resourceType"] = json.RawMessage(`"Client"`)
	if c.ID != "" {
		id, _ := json.Marshal(c.ID)
		out["id"] = id
	}
	return json.Marshal(out)
}
