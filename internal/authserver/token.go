package authserver

import (
	"context"
	"errors"

	"github.com/fhirgate/fhirgate/internal/tokens"
	"github.com/fhirgate/fhirgate/smart"
)

// Token answers a token request (POST /auth/token) for the
// client_credentials grant of SMART Backend Services
// (backend-services.html#obtain-access-token): it authenticates the
// client (private_key_jwt per RFC 7523, or a secret per RFC 6749 §2.3.1),
// grants the requested scope cut down to the client's ceiling, and issues
// a signed access token.
//
// A refusal is a *smart.Error: invalid_request, unsupported_grant_type and
// invalid_scope (400), invalid_client (401; when req.HasBasic the HTTP
// layer must add WWW-Authenticate: Basic, RFC 6749 §5.2),
// unauthorized_client (400), slow_down (429 with RetryAfter). Any other
// error is an internal failure (store down) for a 500. Every call writes
// one audit log line.
func (s *Server) Token(ctx context.Context, req TokenRequest) (*smart.TokenResponse, error) {
	ev := &auditEvent{remoteAddr: req.RemoteAddr}
	resp, err := s.token(ctx, &req, ev)
	s.auditToken(ctx, ev, err)
	return resp, err
}

// AuditTokenRefusal writes the audit line for a token request refused
// before Token could run (a form ParseTokenForm refused, a wrong content
// type, a rate limit applied by the HTTP layer), so that every refusal is
// logged once.
func (s *Server) AuditTokenRefusal(ctx context.Context, remoteAddr, claimedClientID string, err error) {
	s.auditToken(ctx, &auditEvent{remoteAddr: remoteAddr, clientID: claimedClientID}, err)
}

func (s *Server) token(ctx context.Context, req *TokenRequest, ev *auditEvent) (*smart.TokenResponse, error) {
	now := s.cfg.Now()
	if err := s.cfg.Limits.checkAddress(req.RemoteAddr, now); err != nil {
		return nil, err
	}
	if err := checkGrantType(req.GrantType); err != nil {
		return nil, err
	}
	method, err := req.method()
	if err != nil {
		return nil, err
	}
	ev.method = string(method)
	client, err := s.authenticateForToken(ctx, req, method, ev)
	if err != nil {
		return nil, err
	}
	ev.clientID = client.ID
	if !client.HasGrant(GrantClientCredentials) {
		return nil, smart.UnauthorizedClient("client %q may not use the client_credentials grant", client.ID)
	}
	granted, err := smart.Grant(req.Scope, client.Scope)
	if err != nil {
		return nil, smart.InvalidScope("%v", err)
	}
	return s.issue(client, granted, ev)
}

func checkGrantType(g string) error {
	switch g {
	case "":
		return smart.InvalidRequest("grant_type is required")
	case smart.GrantClientCredentials:
		return nil
	}
	return smart.UnsupportedGrantType("grant_type %q is not supported; use %q", shorten(g), smart.GrantClientCredentials)
}

func (s *Server) authenticateForToken(ctx context.Context, req *TokenRequest, method authMethod, ev *auditEvent) (*Client, error) {
	switch method {
	case methodPrivateKeyJWT:
		return s.authenticateAssertion(ctx, req, ev)
	case methodSecretBasic:
		ev.clientID = req.BasicUser
		return s.authenticateTokenSecret(ctx, req.BasicUser, req.BasicPassword)
	case methodSecretPost:
		ev.clientID = req.ClientID
		if req.ClientID == "" {
			return nil, smart.InvalidClient("client_id is required with client_secret")
		}
		return s.authenticateTokenSecret(ctx, req.ClientID, req.ClientSecret)
	}
	return nil, smart.InvalidClient("no client authentication: send client_assertion_type and client_assertion (private_key_jwt), or HTTP Basic credentials")
}

// authenticateTokenSecret authenticates with a secret at the token
// endpoint, where the client must also be rate-limited.
func (s *Server) authenticateTokenSecret(ctx context.Context, id, secret string) (*Client, error) {
	c, err := s.verifyClientSecret(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Limits.checkClient(c.ID, s.cfg.Now()); err != nil {
		return nil, err
	}
	return c, nil
}

// issue signs the access token; its lifetime is the client's
// access_token_expiration capped by MaxTokenLifetime.
func (s *Server) issue(c *Client, granted smart.Scopes, ev *auditEvent) (*smart.TokenResponse, error) {
	lifetime := min(c.AccessTokenLifetime, s.cfg.MaxTokenLifetime)
	scope := granted.String()
	tok, claims, err := s.tokens.Issue(tokens.Client{ID: c.ID, Registration: c.Registration}, scope, lifetime)
	if err != nil {
		return nil, errors.Join(errors.New("authserver: issuing token"), err)
	}
	ev.tokenJTI, ev.scope = claims.ID, scope
	return &smart.TokenResponse{
		AccessToken: tok,
		TokenType:   smart.TokenTypeBearer,
		ExpiresIn:   claims.Expires - claims.IssuedAt,
		Scope:       scope,
	}, nil
}
