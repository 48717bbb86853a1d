package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// Transport is an http.RoundTripper that sends "Authorization: Bearer"
// with a token from Source (RFC 6750 §2.1). When the server answers 401 it
// drops that token, gets a new one and sends the request once more, so an
// expired or revoked token never reaches the caller as an error (as the
// SMART Backend Services guidance suggests). The retry needs a replayable
// body: none, or a request with GetBody (http.NewRequest sets it for
// bytes.Reader, bytes.Buffer and strings.Reader bodies).
//
// The token is sent only to the origin of the original request: when an
// http.Client follows a redirect to another scheme, host or port (say, a
// file server's signed URL), the redirected request goes without it.
type Transport struct {
	// Source supplies tokens. If it has TokenContext(ctx) that is used; if
	// it has Invalidate(*oauth2.Token) a 401 is retried with a new token.
	Source oauth2.TokenSource
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// contextTokenSource is a token source that honours contexts.
type contextTokenSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// invalidator can drop a token the server rejected.
type invalidator interface {
	Invalidate(tok *oauth2.Token)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req) {
		return t.base().RoundTrip(req)
	}
	tok, err := t.token(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base().RoundTrip(authorized(req, req.Body, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	inv, ok := t.Source.(invalidator)
	if !ok {
		return resp, nil
	}
	// Drop the token even when this request cannot be replayed, so that
	// the next one goes out with a new token.
	inv.Invalidate(tok)
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	fresh, err := t.token(req.Context())
	if err != nil {
		drain(resp)
		return nil, fmt.Errorf("client: %s answered 401 and no new token could be obtained: %w", RedactURL(req.URL), err)
	}
	if fresh.AccessToken == tok.AccessToken {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	drain(resp)
	return t.base().RoundTrip(authorized(req, body, fresh))
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) token(ctx context.Context) (*oauth2.Token, error) {
	if cs, ok := t.Source.(contextTokenSource); ok {
		return cs.TokenContext(ctx)
	}
	return t.Source.Token()
}

// authorized clones req (a RoundTripper must not modify its request) with
// body and the bearer token.
func authorized(req *http.Request, body io.ReadCloser, tok *oauth2.Token) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

// sameOrigin reports whether req goes to the scheme, host and port of the
// request that started its redirect chain (http.Request.Response is set
// only on requests an http.Client made to follow a redirect).
func sameOrigin(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	return first.URL.Scheme == req.URL.Scheme && first.URL.Host == req.URL.Host
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drain reads a little of a body that is discarded so that the connection
// can be reused, then closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}
