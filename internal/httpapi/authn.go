package httpapi

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/logctx"
	"github.com/fhirgate/fhirgate/internal/ratelimit"
)

// Authenticate reads the Authorization header: HTTP Basic of root or of a
// registered client, or a bearer access token. It returns the request with
// the Principal in its context, the unchanged request when there are no
// credentials, or a 401 *fhir.Error when the credentials are bad.
// Handlers mounted from outside (export status and files) call it too.
func (s *Server) Authenticate(r *http.Request) (*http.Request, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return r, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	var p *authz.Principal
	var err error
	switch strings.ToLower(scheme) {
	case "basic":
		p, err = s.basic(r, cred)
	case "bearer":
		if s.cfg.Authenticator == nil || cred == "" {
			return nil, fhir.Unauthorized("the access token is not valid here")
		}
		p, err = s.cfg.Authenticator.Bearer(r.Context(), cred)
	default:
		return nil, fhir.Unauthorized("Authorization scheme %q is not supported: use Bearer or Basic", scheme)
	}
	if err != nil {
		return nil, err
	}
	ctx := authz.WithPrincipal(r.Context(), p)
	ctx = logctx.With(ctx, slog.String("client_id", p.ClientID))
	return r.WithContext(ctx), nil
}

// basic authenticates HTTP Basic credentials. Failures are counted per
// remote address: past the limit the caller gets 429 before any secret is
// checked, so guessing is slow and cannot make the server burn CPU on
// argon2id.
func (s *Server) basic(r *http.Request, cred string) (*authz.Principal, error) {
	ip := remoteIP(r)
	now := time.Now()
	if ok, wait := s.cfg.BasicFailures.Available(ip, now); !ok {
		return nil, &challengeError{fe: fhir.TooManyRequests("too many failed logins from this address; retry later"),
			retryAfter: ratelimit.RetryAfterSeconds(wait)}
	}
	p, err := s.checkBasic(r.Context(), cred)
	if fe := fhir.AsError(err); fe != nil && fe.Status == http.StatusUnauthorized {
		s.cfg.BasicFailures.Allow(ip, now)
	}
	return p, err
}

func (s *Server) checkBasic(ctx context.Context, cred string) (*authz.Principal, error) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return nil, fhir.Unauthorized("malformed HTTP Basic credentials")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return nil, fhir.Unauthorized("malformed HTTP Basic credentials: want client-id:secret")
	}
	if user == "root" {
		if s.isRoot(user, pass) {
			return &authz.Principal{ClientID: "root", Root: true, Method: "basic"}, nil
		}
		if !s.hasRoot {
			return nil, fhir.Unauthorized("the root client is disabled: start fhirgate with --root-secret to use it")
		}
		return nil, fhir.Unauthorized("invalid client credentials")
	}
	if s.cfg.Authenticator == nil {
		return nil, fhir.Unauthorized("invalid client credentials")
	}
	return s.cfg.Authenticator.Basic(ctx, user, pass)
}

// requireRoot authenticates the request and admits only root. Without a
// root secret the admin side is closed: every request gets 401, whatever
// credentials it carries (CONTRACT.md, --root-secret), and nothing is
// authenticated, so a valid client token cannot even learn it is valid here.
func (s *Server) requireRoot(r *http.Request) (*http.Request, error) {
	if !s.hasRoot {
		return nil, errAdminDisabled()
	}
	r, err := s.Authenticate(r)
	if err != nil {
		return nil, err
	}
	if err := s.admitRoot(authz.FromContext(r.Context())); err != nil {
		return nil, err
	}
	return r, nil
}

// admitRoot admits only root: 401 when the admin side is disabled or the
// caller sent no credentials, 403 for any other authenticated caller.
func (s *Server) admitRoot(p *authz.Principal) error {
	switch {
	case !s.hasRoot:
		return errAdminDisabled()
	case p == nil:
		return fhir.Unauthorized("the admin API needs HTTP Basic credentials of root")
	case !p.Root:
		return fhir.Forbidden("only root may use the admin API")
	}
	return nil
}

func errAdminDisabled() error {
	return fhir.Unauthorized("the admin API is disabled: start fhirgate with --root-secret")
}
