// Package httpapi is fhirgate's HTTP transport: routing, authentication of
// callers, content negotiation and the rendering of results and errors. The
// work itself happens in transport-free services (fhirapi for FHIR); each
// surface renders failures its own way: OperationOutcome on /fhir and the
// admin API, RFC 6749 error JSON on /auth.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fhirgate/fhirgate/internal/authserver"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/ratelimit"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Authenticator checks credentials other than the root secret: bearer
// access tokens, and HTTP Basic of registered clients. Each method returns
// a *fhir.Error (401) when the credentials are bad.
type Authenticator interface {
	Bearer(ctx context.Context, token string) (*authz.Principal, error)
	Basic(ctx context.Context, clientID, secret string) (*authz.Principal, error)
}

// AdminCodec validates and prepares admin resources before they are stored.
type AdminCodec interface {
	// PrepareClient validates a Client PUT to /Client/{id} and returns the
	// JSON to store (never holding the secret) and the secret's hash ("" when
	// the body has no secret). Errors are *fhir.Error (400, 422).
	PrepareClient(id string, body []byte) (stored []byte, secretHash string, err error)
	// PreparePolicy validates an AccessPolicy PUT.
	PreparePolicy(id string, body []byte) ([]byte, error)
}

// Config configures a Server.
type Config struct {
	FHIR  *fhirapi.Service
	Store store.Store
	// RootSecret is the secret of the built-in root client; empty disables
	// root, so the admin API answers 401 to everyone.
	RootSecret string
	// Authenticator handles bearer tokens and client Basic credentials;
	// nil means only root can authenticate.
	Authenticator Authenticator
	// Admin validates admin resources (default: a codec that checks the
	// JSON shape and hashes secrets).
	Admin AdminCodec
	// Auth is the SMART authorization server: with it, /auth/token,
	// /auth/introspect, discovery and JWKS are served, and bearer tokens
	// and client Basic credentials are accepted on /fhir.
	Auth *authserver.Server
	// BaseURL is the public base URL (for discovery documents).
	BaseURL string
	// OnClientChange runs after a Client was created, replaced or deleted.
	OnClientChange func(id string)
	// OnPolicyChange runs after an AccessPolicy changed.
	OnPolicyChange func()
	// BasicFailures limits failed HTTP Basic attempts per remote address,
	// so nobody can make the server run argon2id for them without end
	// (default: a burst of 20, then one a second).
	BasicFailures *ratelimit.Keyed
	// MaxBodyBytes caps request bodies (default 16 MiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Registerer receives the HTTP metrics (default: a new registry).
	Registerer prometheus.Registerer
	// Gatherer serves /metrics (default: the registry above).
	Gatherer prometheus.Gatherer
	// Started is when the server started (CapabilityStatement.date).
	Started time.Time
	// Mount adds further routes (authorization server, export) to the mux
	// before the FHIR catch-all.
	Mount []func(mux *http.ServeMux)
}

// Server is the HTTP handler of fhirgate.
type Server struct {
	cfg     Config
	fhir    *fhirapi.Service
	log     *slog.Logger
	rootSum [32]byte
	hasRoot bool
	metrics *metrics
	handler http.Handler
	ops     []Operation
}

// New builds the handler.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Admin == nil {
		cfg.Admin = DefaultAdminCodec{}
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.Authenticator == nil && cfg.Auth != nil {
		cfg.Authenticator = smartAuthenticator{cfg.Auth}
	}
	if cfg.BasicFailures == nil {
		cfg.BasicFailures = ratelimit.New(1, 20, ratelimit.DefaultMaxKeys)
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	s := &Server{cfg: cfg, fhir: cfg.FHIR, log: cfg.Logger}
	if cfg.RootSecret != "" {
		s.rootSum, s.hasRoot = sha256.Sum256([]byte(cfg.RootSecret)), true
	}
	s.metrics = newMetrics(cfg.Registerer)
	mux := http.NewServeMux()
	s.routes(mux)
	s.handler = s.middleware(mux)
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", s.health)
	mux.Handle("GET /metrics", s.metricsHandler())
	if s.cfg.Auth != nil {
		s.oauthRoutes(mux)
	}
	for _, m := range s.cfg.Mount {
		m(mux)
	}
	s.adminRoutes(mux)
	s.pprofRoutes(mux)
	mux.HandleFunc("/fhir", s.fhirHandler)
	mux.HandleFunc("/fhir/", s.fhirHandler)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	setRoute(r, "/health")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.ErrorContext(r.Context(), "health check: database does not answer", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"unavailable","reason":"database"}`))
		return
	}
	w.Write([]byte(`{"status":"ok"}`))
}

// isRoot checks root credentials in constant time.
func (s *Server) isRoot(user, pass string) bool {
	if !s.hasRoot || user != "root" {
		return false
	}
	sum := sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(sum[:], s.rootSum[:]) == 1
}
