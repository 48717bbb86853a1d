package jwks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/fhirgate/fhirgate/internal/ratelimit"
)

// Config configures how client JWK Sets are fetched and cached. Zero
// fields take the defaults named in their comments.
type Config struct {
	// AllowPrivate lets jwks_uri resolve to loopback, private, link-local
	// and other non-public addresses (fhirgate --allow-private-jwks).
	AllowPrivate bool
	// AllowHTTP accepts http:// jwks_uri values; otherwise only https.
	// Meant for development together with AllowPrivate.
	AllowHTTP bool
	// ConnectTimeout bounds the TCP connect and TLS handshake (default 3s).
	ConnectTimeout time.Duration
	// Timeout bounds a whole fetch including redirects and body (default 10s).
	Timeout time.Duration
	// MaxBytes caps the response body (default 128 KiB).
	MaxBytes int64
	// MaxRedirects caps redirects followed (default 3).
	MaxRedirects int
	// DefaultTTL is used when a response sets neither Cache-Control
	// max-age nor Expires (default 5 minutes, Aidbox's JWKS cache default).
	DefaultTTL time.Duration
	// MaxTTL bounds any lifetime, explicit or default (default 1 hour).
	MaxTTL time.Duration
	// MinTTL, when positive, is a floor on every lifetime, even that of a
	// response saying no-store or max-age=0. It shields a client's JWKS
	// host from a fetch per token request, at the price of caching up to
	// MinTTL longer than Cache-Control allows, which SMART-ASYM forbids
	// ("SHALL NOT"). The default, 0, keeps to the spec.
	MinTTL time.Duration
	// MaxStale bounds how long past expiry a set is used when refreshing
	// fails and the response allowed it with stale-if-error (default 1 hour).
	MaxStale time.Duration
	// RefetchInterval is the least time between two forced refetches on an
	// unknown kid for one client (default 10s), so nobody can make
	// fhirgate hammer a URL by sending made-up kids.
	RefetchInterval time.Duration
	// TLSConfig overrides the TLS client configuration (tests use it to
	// trust an httptest server).
	TLSConfig *tls.Config
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives fetch failures (default slog.Default()).
	Logger *slog.Logger

	// blocked overrides the address policy; tests only.
	blocked func(netip.Addr) string
}

func (c *Config) defaults() {
	setDefault(&c.ConnectTimeout, 3*time.Second)
	setDefault(&c.Timeout, 10*time.Second)
	setDefault(&c.MaxBytes, 128<<10)
	setDefault(&c.MaxRedirects, 3)
	setDefault(&c.DefaultTTL, 5*time.Minute)
	setDefault(&c.MaxTTL, time.Hour)
	setDefault(&c.MaxStale, time.Hour)
	setDefault(&c.RefetchInterval, 10*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Cache resolves client keys from jwks_uri: it fetches with the SSRF guard,
// caches each set as long as its Cache-Control allows (SMART-ASYM: SHALL
// NOT cache longer; SHOULD cache), collapses concurrent fetches of one URL
// into one, refetches once on an unknown kid (rate-limited per client) to
// follow key rotation, and keeps the last good set when a refetch fails.
type Cache struct {
	cfg     Config
	fetcher *fetcher
	group   singleflight.Group
	refetch *ratelimit.Keyed

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	set        *Set
	fetched    time.Time
	expires    time.Time // fresh before this instant
	staleUntil time.Time // usable after a failed refresh before this instant
}

// NewCache returns a Cache with cfg (defaults filled in).
func NewCache(cfg Config) *Cache {
	cfg.defaults()
	return &Cache{
		cfg:     cfg,
		fetcher: newFetcher(cfg),
		refetch: ratelimit.Every(cfg.RefetchInterval, 1, 0),
		entries: make(map[string]*entry),
	}
}

// Get returns the JWK Set at url, from the cache while it is fresh.
func (c *Cache) Get(ctx context.Context, url string) (*Set, error) {
	set, _, err := c.get(ctx, url)
	return set, err
}

// get also reports whether this call fetched the set.
func (c *Cache) get(ctx context.Context, url string) (*Set, bool, error) {
	if e := c.entry(url); e != nil && c.cfg.Now().Before(e.expires) {
		return e.set, false, nil
	}
	set, err := c.refresh(ctx, url)
	return set, err == nil, err
}

func (c *Cache) entry(url string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[url]
}

// refresh fetches url once for all concurrent callers. When the fetch
// fails it falls back to the last good set within its stale-if-error
// allowance.
func (c *Cache) refresh(ctx context.Context, url string) (*Set, error) {
	ch := c.group.DoChan(url, func() (any, error) {
		// Detached from the first caller's context so its cancellation
		// does not fail the others; cfg.Timeout still bounds it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		now := c.cfg.Now()
		set, policy, err := c.fetcher.fetch(fctx, url, now)
		if err != nil {
			return nil, err
		}
		c.store(url, set, policy, now)
		return set, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrFetch, ctx.Err())
	case r := <-ch:
		if r.Err == nil {
			return r.Val.(*Set), nil
		}
		return c.fallback(ctx, url, r.Err)
	}
}

// fallback logs with the caller's context, so that the line carries the
// request id of the token request that needed the set.
func (c *Cache) fallback(ctx context.Context, url string, err error) (*Set, error) {
	e := c.entry(url)
	if e != nil && c.cfg.Now().Before(e.staleUntil) {
		c.cfg.Logger.WarnContext(ctx, "jwks refresh failed; using the last good set within stale-if-error",
			"jwks_uri", url, "error", err.Error())
		return e.set, nil
	}
	c.cfg.Logger.WarnContext(ctx, "jwks fetch failed", "jwks_uri", url, "error", err.Error())
	return nil, err
}

// store records a fetched set. An explicit lifetime is honoured but never
// exceeded; MaxTTL bounds it further (SMART-ASYM: SHALL NOT cache longer
// than Cache-Control allows).
func (c *Cache) store(url string, set *Set, p cachePolicy, now time.Time) {
	ttl := c.cfg.DefaultTTL
	if p.explicit {
		ttl = p.ttl
	}
	ttl = max(min(ttl, c.cfg.MaxTTL), c.cfg.MinTTL)
	e := &entry{set: set, fetched: now, expires: now.Add(ttl)}
	e.staleUntil = e.expires.Add(min(p.staleIfError, c.cfg.MaxStale))
	c.mu.Lock()
	c.entries[url] = e
	c.mu.Unlock()
}

// Lookup returns the single key at url with this kid that fits alg. When
// no key has the kid, the client may have rotated its keys: the set is
// fetched once more, unless it was just fetched or clientID refetched
// within RefetchInterval. A failed refetch keeps the set already cached.
func (c *Cache) Lookup(ctx context.Context, clientID, url, kid, alg string) (Key, error) {
	set, fetched, err := c.get(ctx, url)
	if err != nil {
		return Key{}, err
	}
	k, err := set.Select(kid, alg)
	if !errors.Is(err, ErrNoKey) || set.HasKID(kid) || fetched {
		return k, err
	}
	if ok, _ := c.refetch.Allow(clientID, c.cfg.Now()); !ok {
		return Key{}, fmt.Errorf("%w (kid %q is unknown and the JWK Set was refetched moments ago)", ErrNoKey, kid)
	}
	set, err = c.refresh(ctx, url)
	if err != nil {
		return Key{}, fmt.Errorf("%w (kid %q is unknown and refetching the JWK Set failed: %w)", ErrNoKey, kid, err)
	}
	return set.Select(kid, alg)
}

// Forget drops the cached set of url, e.g. when a client's registration
// changes.
func (c *Cache) Forget(url string) {
	c.mu.Lock()
	delete(c.entries, url)
	c.mu.Unlock()
}
