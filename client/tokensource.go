package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/fhirgate/fhirgate/client/internal/backoff"
	"github.com/fhirgate/fhirgate/smart"
)

// Defaults of Config.
const (
	// DefaultRefreshMargin is how long before expiry a token is replaced.
	DefaultRefreshMargin = time.Minute
	// DefaultTokenLifetime is assumed when a server omits expires_in; it is
	// the longest lifetime SMART recommends (backend-services.html#issue-access-token).
	DefaultTokenLifetime = 5 * time.Minute
	// DefaultRefreshTimeout bounds one token refresh, retries included.
	DefaultRefreshTimeout = time.Minute
)

// Retry tunes the retries of transient failures (network errors, 429, 5xx).
type Retry struct {
	// Attempts is the total number of tries; zero means 4, one disables retries.
	Attempts int
	// Initial is the first backoff delay; zero means 500ms. Later delays
	// double, with jitter.
	Initial time.Duration
	// Max is the longest wait between tries; zero means 10s. A server that
	// asks for a longer Retry-After makes the call fail rather than wait.
	Max time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 4
	}
	if r.Initial <= 0 {
		r.Initial = 500 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 10 * time.Second
	}
	return r
}

// Config describes a SMART Backend Services client.
type Config struct {
	// ClientID is the client_id the server assigned at registration.
	ClientID string
	// Key signs the client assertions.
	Key *Key
	// Scopes are requested in every token request, e.g. "system/*.rs".
	Scopes []string
	// TokenURL is the token endpoint. When empty it is discovered from
	// FHIRBaseURL through /.well-known/smart-configuration.
	TokenURL string
	// FHIRBaseURL is the FHIR base URL, used to discover TokenURL.
	FHIRBaseURL string
	// JKU, when set, is sent as the jku header of every assertion; it must
	// equal the jwks_uri registered for the client.
	JKU string
	// AssertionLifetime is the lifetime of each assertion; zero means
	// DefaultAssertionLifetime, and it may not exceed five minutes.
	AssertionLifetime time.Duration
	// RefreshMargin is how long before expiry a cached token is replaced;
	// zero means DefaultRefreshMargin. It is capped at half the token's
	// lifetime so that short-lived tokens are still used.
	RefreshMargin time.Duration
	// RefreshTimeout bounds one refresh, retries included, whatever the
	// contexts of the callers waiting for it; zero means DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	// Retry tunes the retries of token and discovery requests.
	Retry Retry
	// HTTPClient sends token and discovery requests, and its Transport is
	// the base of Transport and Client; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refreshes and retries (never tokens or assertions);
	// nil discards them.
	Logger *slog.Logger
}

// TokenSource is an oauth2.TokenSource that obtains access tokens with the
// SMART Backend Services client_credentials grant and a signed client
// assertion (RFC 7523, SMART client-confidential-asymmetric).
//
// It caches the token and replaces it RefreshMargin before it expires. Only
// one token request is in flight at a time, however many goroutines ask;
// they all receive its result. Transient failures are retried with backoff,
// each try with a fresh assertion (a new jti). When a refresh fails while
// the cached token has not yet expired, that token is returned. OAuth errors
// are returned as *smart.Error (use errors.As).
//
// A TokenSource is safe for concurrent use.
type TokenSource struct {
	cfg      Config
	hc       *http.Client
	log      *slog.Logger
	flight   singleflight.Group
	requests atomic.Int64

	mu       sync.Mutex
	cur      *cachedToken
	tokenURL string
}

// cachedToken is a token with the times at which it is replaced and expires.
type cachedToken struct {
	tok       *oauth2.Token
	resp      *TokenResponse
	refreshAt time.Time
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// NewTokenSource checks cfg and returns a TokenSource. It does no I/O: the
// token endpoint is discovered with the first token request.
func NewTokenSource(cfg Config) (*TokenSource, error) {
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("client: Config.ClientID is required")
	case cfg.Key == nil:
		return nil, errors.New("client: Config.Key is required")
	case cfg.TokenURL == "" && cfg.FHIRBaseURL == "":
		return nil, errors.New("client: Config needs TokenURL or FHIRBaseURL")
	case cfg.AssertionLifetime < 0 || cfg.AssertionLifetime > MaxAssertionLifetime:
		return nil, fmt.Errorf("client: AssertionLifetime %v is outside (0, %v]", cfg.AssertionLifetime, MaxAssertionLifetime)
	}
	if cfg.TokenURL != "" {
		if err := checkEndpoint(cfg.TokenURL); err != nil {
			return nil, fmt.Errorf("client: TokenURL %w", err)
		}
	}
	if cfg.FHIRBaseURL != "" {
		if err := checkEndpoint(cfg.FHIRBaseURL); err != nil {
			return nil, fmt.Errorf("client: FHIRBaseURL %w", err)
		}
	}
	if cfg.RefreshMargin <= 0 {
		cfg.RefreshMargin = DefaultRefreshMargin
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Retry = cfg.Retry.withDefaults()
	s := &TokenSource{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger, tokenURL: cfg.TokenURL}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Token returns a valid access token, from the cache when it is not due for
// refresh. It implements oauth2.TokenSource.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext is Token with a context. A caller whose context ends stops
// waiting, but the shared refresh carries on for the others.
func (s *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if c := s.fresh(); c != nil {
		return c.tok, nil
	}
	ch := s.flight.DoChan("token", func() (any, error) {
		// Checked again: a refresh may have finished between our look at
		// the cache and joining the flight.
		if c := s.fresh(); c != nil {
			return c, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RefreshTimeout)
		defer cancel()
		return s.refresh(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			if c := s.unexpired(); c != nil {
				s.log.Warn("token refresh failed; using the cached token until it expires", "err", r.Err)
				return c.tok, nil
			}
			return nil, r.Err
		}
		return r.Val.(*cachedToken).tok, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Refresh requests a new token now, bypassing the cache, caches it, and
// returns the whole token response, raw JSON included.
func (s *TokenSource) Refresh(ctx context.Context) (*TokenResponse, error) {
	c, err := s.refresh(ctx)
	if err != nil {
		return nil, err
	}
	return c.resp, nil
}

// Invalidate drops tok from the cache if it is still the cached token, so
// that the next Token call fetches a new one. Transport calls it when a
// server answers 401; comparing tokens keeps a late 401 for an old token
// from discarding a newer one.
func (s *TokenSource) Invalidate(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.tok.AccessToken == tok.AccessToken {
		s.cur = nil
	}
}

// Requests is the number of token requests sent so far, retries included.
func (s *TokenSource) Requests() int64 { return s.requests.Load() }

// TokenURL returns the token endpoint, discovering it on first use.
func (s *TokenSource) TokenURL(ctx context.Context) (string, error) {
	s.mu.Lock()
	u := s.tokenURL
	s.mu.Unlock()
	if u != "" {
		return u, nil
	}
	var conf *smart.Configuration
	err := s.retry(ctx, "discovery", func() error {
		var err error
		conf, err = Discover(ctx, s.hc, s.cfg.FHIRBaseURL)
		return err
	})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.tokenURL = conf.TokenEndpoint
	s.mu.Unlock()
	return conf.TokenEndpoint, nil
}

// Transport returns an http.RoundTripper that authorizes requests with this
// source's tokens; a nil base means the base of Config.HTTPClient, or
// http.DefaultTransport.
func (s *TokenSource) Transport(base http.RoundTripper) *Transport {
	if base == nil && s.cfg.HTTPClient != nil {
		base = s.cfg.HTTPClient.Transport
	}
	return &Transport{Source: s, Base: base}
}

// Client returns an http.Client that authorizes every request with this
// source's tokens and, on a 401, retries once with a new token. It has no
// overall timeout, since bulk downloads may take long; use contexts.
func (s *TokenSource) Client() *http.Client {
	return &http.Client{Transport: s.Transport(nil)}
}

func (s *TokenSource) fresh() *cachedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cfg.Now().Before(s.cur.refreshAt) {
		return s.cur
	}
	return nil
}

func (s *TokenSource) unexpired() *cachedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cfg.Now().Before(s.cur.tok.Expiry) {
		return s.cur
	}
	return nil
}

// refresh obtains and caches a new token.
func (s *TokenSource) refresh(ctx context.Context) (*cachedToken, error) {
	tokenURL, err := s.TokenURL(ctx)
	if err != nil {
		return nil, err
	}
	var (
		resp  *TokenResponse
		start time.Time
	)
	err = s.retry(ctx, "token request", func() error {
		start = s.cfg.Now()
		a := Assertion{Key: s.cfg.Key, ClientID: s.cfg.ClientID, TokenURL: tokenURL,
			JKU: s.cfg.JKU, Lifetime: s.cfg.AssertionLifetime}
		assertion, err := a.Sign(start)
		if err != nil {
			return err
		}
		s.requests.Add(1)
		resp, err = RequestToken(ctx, s.hc, tokenURL, assertion, strings.Join(s.cfg.Scopes, " "))
		return err
	})
	if err != nil {
		return nil, err
	}
	c := s.cache(resp, start)
	s.log.Debug("access token obtained", "expires_in", resp.ExpiresIn, "scope", resp.Scope)
	return c, nil
}

// cache stores resp. Its lifetime counts from the moment the request was
// sent, so network time only makes us refresh early, never late.
func (s *TokenSource) cache(resp *TokenResponse, start time.Time) *cachedToken {
	life := time.Duration(resp.ExpiresIn) * time.Second
	if life <= 0 {
		life = DefaultTokenLifetime
	}
	margin := min(s.cfg.RefreshMargin, life/2)
	tok := &oauth2.Token{
		AccessToken: resp.AccessToken,
		TokenType:   resp.TokenType,
		Expiry:      start.Add(life),
		ExpiresIn:   resp.ExpiresIn,
	}
	var extra map[string]any
	if json.Unmarshal(resp.Raw, &extra) == nil {
		tok = tok.WithExtra(extra)
	}
	c := &cachedToken{tok: tok, resp: resp, refreshAt: start.Add(life - margin)}
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	return c
}

// retry runs do until it succeeds, fails for good, or runs out of attempts.
func (s *TokenSource) retry(ctx context.Context, what string, do func() error) error {
	r := s.cfg.Retry
	policy := backoff.Policy{Initial: r.Initial, Max: r.Max}
	for attempt := 0; ; attempt++ {
		err := do()
		if err == nil {
			return nil
		}
		wait, ok := retryWait(err, policy, attempt)
		if !ok || attempt+1 >= r.Attempts || ctx.Err() != nil {
			return err
		}
		if wait > r.Max {
			return fmt.Errorf("%w (the server asks to retry after %v)", err, wait)
		}
		s.log.Info(what+" failed; retrying", "attempt", attempt+1, "wait", wait, "err", err)
		if serr := backoff.Sleep(ctx, wait); serr != nil {
			return err
		}
	}
}

// retryWait decides whether err is transient and how long to wait.
func retryWait(err error, p backoff.Policy, attempt int) (time.Duration, bool) {
	wait := p.Delay(attempt)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	var oe *smart.Error
	if errors.As(err, &oe) {
		if oe.Status == http.StatusTooManyRequests || oe.Status >= 500 {
			return max(wait, time.Duration(oe.RetryAfter)*time.Second), true
		}
		return 0, false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return max(wait, he.RetryAfter), he.Temporary()
	}
	// Transport failures (refused or reset connections, timeouts,
	// unexpected EOF) are worth another try; certificate errors are not, and
	// neither are our own validation errors.
	var ue *url.Error
	if errors.As(err, &ue) {
		var cve *tls.CertificateVerificationError
		return wait, !errors.As(err, &cve)
	}
	return 0, false
}
