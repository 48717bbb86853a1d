package authserver

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/internal/ratelimit"
	"github.com/fhirgate/fhirgate/internal/tokens"
)

// Config configures a Server. BaseURL, Clients, Replay, Keyring and JWKS
// are required; zero durations take the defaults in their comments.
type Config struct {
	// BaseURL is fhirgate's public base URL (--base-url); the token
	// endpoint, which client assertions must name as aud, is
	// BaseURL + "/auth/token", and tokens carry it as iss.
	BaseURL string
	Clients ClientStore
	Replay  ReplayStore
	Keyring *tokens.Keyring
	// JWKS fetches and caches keys from clients' jwks_uri.
	JWKS *jwks.Cache
	// Limits, when set, rate-limits the token endpoint per remote address
	// and per client.
	Limits *TokenLimiter

	// Leeway is the clock skew allowed on assertion exp, nbf and iat
	// (zero: the default 60s; checklist G3). NoLeeway allows none.
	Leeway time.Duration
	// MaxTokenLifetime caps a client's access_token_expiration (default
	// 300s: SMART Backend Services says expires_in SHOULD NOT exceed five
	// minutes). The keyring's VerifyGrace must exceed it.
	MaxTokenLifetime time.Duration
	// ClientCacheTTL bounds how long a loaded client is reused without
	// asking the store (default 5s). ClientChanged drops it at once on this
	// replica; the TTL bounds the delay on other replicas.
	ClientCacheTTL time.Duration
	// SecretCacheTTL is how long a verified secret is remembered (default
	// 60s), so a hot HTTP Basic client does not pay argon2id every request.
	SecretCacheTTL time.Duration
	// SecretFailures and SecretFailureWindow throttle secret guessing: a
	// client id may fail SecretFailures times, then once per
	// SecretFailureWindow/SecretFailures (defaults 10 and 1 minute).
	SecretFailures      int
	SecretFailureWindow time.Duration
	// TokenCacheSize bounds the verified access-token cache (default 100,000).
	TokenCacheSize int

	Now func() time.Time
	// Logger receives the audit log (token issued/refused) and errors.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	switch {
	case c.Leeway == NoLeeway:
		c.Leeway = 0
	case c.Leeway <= 0:
		c.Leeway = 60 * time.Second
	}
	setDuration(&c.MaxTokenLifetime, 300*time.Second)
	setDuration(&c.ClientCacheTTL, 5*time.Second)
	setDuration(&c.SecretCacheTTL, 60*time.Second)
	setDuration(&c.SecretFailureWindow, time.Minute)
	if c.SecretFailures <= 0 {
		c.SecretFailures = 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// NoLeeway as Config.Leeway allows no clock skew at all (the zero value
// means the default).
const NoLeeway = time.Duration(-1)

func setDuration(v *time.Duration, d time.Duration) {
	if *v <= 0 {
		*v = d
	}
}

// Server is the transport-free SMART Backend Services authorization
// server: token endpoint, HTTP Basic client authentication, bearer token
// verification and introspection. Methods are safe for concurrent use.
type Server struct {
	cfg      Config
	tokenURL string
	tokens   *tokens.Service
	clients  *clientCache
	secrets  *secretCache
	failures *ratelimit.Keyed
	hashSem  chan struct{}
	dummy    dummyHash
	// hashRuns counts argon2id verifications (tests, metrics).
	hashRuns atomic.Int64
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.BaseURL == "" || cfg.Clients == nil || cfg.Replay == nil || cfg.Keyring == nil || cfg.JWKS == nil {
		return nil, errors.New("authserver: BaseURL, Clients, Replay, Keyring and JWKS are required")
	}
	s := &Server{
		cfg:      cfg,
		tokenURL: cfg.BaseURL + "/auth/token",
		clients:  newClientCache(cfg.Clients, cfg.ClientCacheTTL, cfg.Now),
		secrets:  newSecretCache(cfg.SecretCacheTTL),
		failures: ratelimit.Every(cfg.SecretFailureWindow/time.Duration(cfg.SecretFailures), cfg.SecretFailures, 0),
		// Each argon2id run holds 19 MiB; bound how many run at once.
		hashSem: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	var err error
	s.tokens, err = tokens.New(tokens.Config{Issuer: cfg.BaseURL, Keyring: cfg.Keyring, Clients: s,
		CacheSize: cfg.TokenCacheSize, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// TokenEndpoint returns the token endpoint URL, the aud client assertions
// must carry.
func (s *Server) TokenEndpoint() string { return s.tokenURL }

// Tokens returns the access-token service (the keyring's public JWKS is
// s.Tokens().Keyring().PublicJWKS()).
func (s *Server) Tokens() *tokens.Service { return s.tokens }

// ClientChanged must be called when a client is created, replaced or
// deleted, so that this replica stops using the old registration at once:
// a deactivated or deleted client's tokens and Basic credentials stop
// working on the next request, and its jwks_uri set is refetched.
func (s *Server) ClientChanged(id string) {
	if old := s.clients.forget(id); old != nil && old.JWKSURI != "" {
		s.cfg.JWKS.Forget(old.JWKSURI)
	}
}

// ClientsChanged drops every cached client. Call it when another replica
// changed clients (the store's configuration revision moved) and it is not
// known which, so that deactivation takes effect here within one poll.
func (s *Server) ClientsChanged() {
	for _, old := range s.clients.forgetAll() {
		if old != nil && old.JWKSURI != "" {
			s.cfg.JWKS.Forget(old.JWKSURI)
		}
	}
}

// ClientActive reports whether the client exists and is active.
func (s *Server) ClientActive(ctx context.Context, id string) (bool, error) {
	_, active, err := s.ClientRegistration(ctx, id)
	return active, err
}

// ClientRegistration returns the client's registration (Client.Registration)
// and whether it exists and is active; the token verifier asks on every
// request. It implements tokens.ClientActivity.
func (s *Server) ClientRegistration(ctx context.Context, id string) (string, bool, error) {
	c, err := s.clients.get(ctx, id)
	if err != nil || c == nil {
		return "", false, err
	}
	return c.Registration, c.Active, nil
}

// Client returns the client with id (nil when unknown), from the cache.
func (s *Server) Client(ctx context.Context, id string) (*Client, error) {
	return s.clients.get(ctx, id)
}
