package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authserver"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/smart"
)

// maxTokenRequest caps a token or introspection request body: a client
// assertion is under 2 KiB; a few of them plus parameters fit easily.
const maxTokenRequest = 4 * authserver.MaxAssertionBytes

// oauthRoutes serves the authorization server's endpoints (CONTRACT.md
// "Authorization server").
func (s *Server) oauthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/auth/token", s.token)
	mux.HandleFunc("/auth/introspect", s.introspect)
	mux.HandleFunc("GET /.well-known/smart-configuration", s.smartConfiguration)
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
}

// readForm reads an application/x-www-form-urlencoded body, as RFC 6749
// §4.4.2 and RFC 7662 §2.1 require.
func readForm(r *http.Request) (url.Values, *smart.Error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != fhir.MediaFormURL {
		return nil, smart.InvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxTokenRequest))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		e := smart.InvalidRequest("the request body exceeds %d bytes", maxTokenRequest)
		e.Status = http.StatusRequestEntityTooLarge
		return nil, e
	}
	if err != nil {
		return nil, smart.InvalidRequest("could not read the request body")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, smart.InvalidRequest("malformed form body")
	}
	return form, nil
}

// token serves POST /auth/token (SMART Backend Services
// backend-services.html#obtain-access-token; RFC 6749 §4.4, §5).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	setRoute(r, "/auth/token")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e := smart.InvalidRequest("the token endpoint takes POST")
		e.Status = http.StatusMethodNotAllowed
		writeOAuthError(w, e)
		return
	}
	ip := remoteIP(r)
	form, ferr := readForm(r)
	if ferr != nil {
		s.cfg.Auth.AuditTokenRefusal(r.Context(), ip, "", ferr)
		writeOAuthError(w, ferr)
		return
	}
	user, pass, hasBasic := r.BasicAuth()
	req, err := authserver.ParseTokenForm(form, user, pass, hasBasic)
	if err != nil {
		s.cfg.Auth.AuditTokenRefusal(r.Context(), ip, form.Get("client_id"), err)
		s.writeTokenError(w, r, err, hasBasic)
		return
	}
	req.RemoteAddr = ip
	resp, err := s.cfg.Auth.Token(r.Context(), req)
	if err != nil {
		s.writeTokenError(w, r, err, req.HasBasic)
		return
	}
	b, _ := json.Marshal(resp)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.Write(b)
}

func (s *Server) writeTokenError(w http.ResponseWriter, r *http.Request, err error, basic bool) {
	var se *smart.Error
	if !errors.As(err, &se) {
		s.log.ErrorContext(r.Context(), "token endpoint failed", "err", err)
		writeOAuthError(w, &smart.Error{Code: "server_error", Description: "internal error; see the server log",
			Status: http.StatusInternalServerError})
		return
	}
	if se.Code == smart.ErrInvalidClient && basic {
		// RFC 6749 §5.2: a client that authenticated through the
		// Authorization header gets 401 with a Basic challenge.
		w.Header().Set("WWW-Authenticate", `Basic realm="fhirgate"`)
	}
	writeOAuthError(w, se)
}

// introspect serves POST /auth/introspect (RFC 7662). The caller must be
// root, a registered client with its secret, or hold a valid access token.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	setRoute(r, "/auth/introspect")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e := smart.InvalidRequest("the introspection endpoint takes POST")
		e.Status = http.StatusMethodNotAllowed
		writeOAuthError(w, e)
		return
	}
	if err := s.introspectionCaller(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="fhirgate", Bearer realm="fhirgate"`)
		writeOAuthError(w, err)
		return
	}
	form, ferr := readForm(r)
	if ferr != nil {
		writeOAuthError(w, ferr)
		return
	}
	tok := form.Get("token")
	if tok == "" || len(form["token"]) > 1 {
		writeOAuthError(w, smart.InvalidRequest("send exactly one token parameter"))
		return
	}
	b, _ := json.Marshal(s.cfg.Auth.Introspect(r.Context(), tok))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (s *Server) introspectionCaller(r *http.Request) *smart.Error {
	if user, pass, ok := r.BasicAuth(); ok {
		if s.isRoot(user, pass) {
			return nil
		}
		if user != "root" {
			if _, err := s.cfg.Auth.AuthenticateSecret(r.Context(), user, pass); err == nil {
				return nil
			}
		}
		return smart.InvalidClient("introspection needs root, a registered client's secret, or a valid access token")
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && (h[:7] == "Bearer " || h[:7] == "bearer ") {
		if _, err := s.cfg.Auth.AuthenticateBearer(r.Context(), h[7:]); err == nil {
			return nil
		}
	}
	return smart.InvalidClient("introspection needs root, a registered client's secret, or a valid access token")
}

// smartConfiguration serves the SMART discovery document (SMART 2.2
// conformance.html): JSON whatever the Accept header says.
func (s *Server) smartConfiguration(w http.ResponseWriter, r *http.Request) {
	setRoute(r, "/.well-known/smart-configuration")
	b, _ := json.Marshal(authserver.Discovery(s.cfg.BaseURL))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// jwks publishes the public keys that verify fhirgate's access tokens,
// current and still-verifying ones, so verifiers survive a rotation.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	setRoute(r, "/.well-known/jwks.json")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.cfg.Auth.Tokens().Keyring().PublicJWKS())
}

// remoteIP is the caller's address without the port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// smartAuthenticator authenticates /fhir callers through the
// authorization server: bearer access tokens, and HTTP Basic of clients
// whose grant_types hold "basic".
type smartAuthenticator struct{ auth *authserver.Server }

func (a smartAuthenticator) Bearer(ctx context.Context, token string) (*authz.Principal, error) {
	p, err := a.auth.AuthenticateBearer(ctx, token)
	if err != nil {
		return nil, authFailure(err, "Bearer")
	}
	return &authz.Principal{ClientID: p.ClientID, Method: "bearer", Scope: p.Scopes.String(), TokenID: p.TokenID, Grant: p}, nil
}

func (a smartAuthenticator) Basic(ctx context.Context, clientID, secret string) (*authz.Principal, error) {
	c, err := a.auth.AuthenticateBasic(ctx, clientID, secret)
	if err != nil {
		return nil, authFailure(err, "Basic")
	}
	p := c.BasicPrincipal()
	return &authz.Principal{ClientID: p.ClientID, Method: "basic", Scope: p.Scopes.String(), Grant: p}, nil
}

// challengeError is a 401 or 429 with the WWW-Authenticate or Retry-After
// it needs (RFC 6750 §3, RFC 7235).
type challengeError struct {
	fe         *fhir.Error
	challenge  string
	retryAfter int
}

func (e *challengeError) Error() string { return e.fe.Error() }
func (e *challengeError) Unwrap() error { return e.fe }

// authFailure turns an authentication error into the FHIR error the client
// sees: invalid_token and invalid_client are 401, slow_down 429.
func authFailure(err error, scheme string) error {
	var se *smart.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case smart.ErrSlowDown:
		return &challengeError{fe: fhir.TooManyRequests("%s", se.Description), retryAfter: max(se.RetryAfter, 1)}
	case smart.ErrInvalidToken:
		return &challengeError{fe: fhir.Unauthorized("%s", se.Description),
			challenge: `Bearer realm="fhirgate", error="invalid_token"`}
	}
	return &challengeError{fe: fhir.Unauthorized("%s", se.Description), challenge: scheme + ` realm="fhirgate"`}
}

// setChallenge copies a challengeError's headers to the response.
func setChallenge(w http.ResponseWriter, err error) {
	var ce *challengeError
	if !errors.As(err, &ce) {
		return
	}
	if ce.challenge != "" {
		w.Header().Set("WWW-Authenticate", ce.challenge)
	}
	if ce.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ce.retryAfter))
	}
}
