package authserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/tokens"
	"github.com/fhirgate/fhirgate/smart"
)

// Principal is who a FHIR request acts for, and what its credentials
// allow; the FHIR layer checks every interaction against Scopes (smart.Scopes
// AccessFor) and AccessPolicy.
type Principal struct {
	ClientID string
	Scopes   smart.Scopes
	// TokenID is the access token's jti; empty for HTTP Basic.
	TokenID string
	// Method is "bearer" or "basic".
	Method string
}

// Authorize checks the principal's scopes for one interaction on
// resourceType (SMART 2.2: r for read, vread and instance history; s for
// search and type or system history; c create; u update and patch; d
// delete). Call it per interaction and per batch or transaction entry;
// AccessPolicy is checked after it. It returns what the scopes grant, whose
// Filters the caller MUST apply when not nil, or a 403 *fhir.Error naming
// the scope that would be needed.
func (p *Principal) Authorize(resourceType string, i smart.Interaction) (smart.Access, error) {
	perm, ok := i.Permission()
	if !ok {
		return smart.Access{}, fhir.Forbidden("interaction %q is not covered by any scope", i)
	}
	a := p.Scopes.Access(resourceType, perm)
	if !a.Allowed {
		return smart.Access{}, fhir.Forbidden("the granted scopes do not allow %s on %s; it needs system/%s.%s",
			i, resourceType, resourceType, perm)
	}
	return a, nil
}

// BasicPrincipal is the principal of a request authenticated by
// AuthenticateBasic.
func (c *Client) BasicPrincipal() *Principal {
	return &Principal{ClientID: c.ID, Scopes: c.BasicScopes(), Method: "basic"}
}

// AuthenticateBearer verifies an access token from Authorization: Bearer
// and returns its principal. A bad, expired or revoked token (client
// deleted or inactive) is a *smart.Error invalid_token, 401 (RFC 6750
// §3.1; the HTTP layer adds WWW-Authenticate: Bearer error="invalid_token").
// Anything else is internal.
func (s *Server) AuthenticateBearer(ctx context.Context, token string) (*Principal, error) {
	c, err := s.tokens.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, tokens.ErrInvalidToken) {
			return nil, &smart.Error{Code: smart.ErrInvalidToken, Description: err.Error(), Status: http.StatusUnauthorized}
		}
		return nil, err
	}
	scopes, err := smart.ParseScopes(c.Scope)
	if err != nil {
		// fhirgate only signs scopes it parsed; this means a bug.
		s.cfg.Logger.ErrorContext(ctx, "access token with an unparsable scope", "client_id", c.ClientID, "jti", c.ID)
		return nil, &smart.Error{Code: smart.ErrInvalidToken, Description: "the token's scope is unusable", Status: http.StatusUnauthorized}
	}
	return &Principal{ClientID: c.ClientID, Scopes: scopes, TokenID: c.ID, Method: "bearer"}, nil
}

// Introspection is the RFC 7662 §2.2 response. An inactive token gives
// {"active": false} and nothing else.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Iss       string `json:"iss,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	JTI       string `json:"jti,omitempty"`
}

// Introspect answers token introspection (RFC 7662; SMART 2.2
// token-introspection.html requires active, scope, client_id and exp for
// an active token). The caller must already be authenticated (root, any
// registered client's secret, or a bearer token). A token that is invalid,
// expired or whose client is gone or inactive is {"active": false}; so is
// one that cannot be checked because the store fails, which is logged.
func (s *Server) Introspect(ctx context.Context, token string) Introspection {
	c, err := s.tokens.Verify(ctx, token)
	if err != nil {
		if !errors.Is(err, tokens.ErrInvalidToken) {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelError, "introspection failed", slog.String("error", err.Error()))
		}
		return Introspection{Active: false}
	}
	return Introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Sub: c.Subject, Iss: c.Issuer,
		TokenType: smart.TokenTypeBearer, Exp: c.Expires, Iat: c.IssuedAt, JTI: c.ID,
	}
}
