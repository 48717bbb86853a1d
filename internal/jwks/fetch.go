package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// ErrFetch wraps every failure to obtain a client's JWK Set from its
// jwks_uri.
var ErrFetch = errors.New("fetching the client's JWK Set failed")

// fetcher GETs JWK Sets from client-supplied URLs with the SSRF guard,
// timeouts and a size cap.
type fetcher struct {
	client    *http.Client
	maxBytes  int64
	allowHTTP bool
}

func newFetcher(cfg Config) *fetcher {
	blocked := cfg.blocked
	if blocked == nil {
		blocked = BlockedReason
	}
	if cfg.AllowPrivate {
		blocked = func(netip.Addr) string { return "" }
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, Control: dialControl(blocked)}
	transport := &http.Transport{
		// No proxy: a proxy would be dialed instead of the target, and the
		// address check would then judge the proxy, not the jwks_uri host.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg.TLSConfig,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	f := &fetcher{maxBytes: cfg.MaxBytes, allowHTTP: cfg.AllowHTTP}
	f.client = &http.Client{
		Transport:     transport,
		Timeout:       cfg.Timeout,
		CheckRedirect: f.checkRedirect(cfg.MaxRedirects),
	}
	return f
}

func (f *fetcher) checkRedirect(max int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > max {
			return fmt.Errorf("more than %d redirects", max)
		}
		// The address of the new location is checked when it is dialed.
		return f.checkURL(req.URL)
	}
}

// checkURL accepts https URLs (http too when allowed) with a host and no
// credentials; SMART-ASYM requires a TLS-protected JWKS URL.
func (f *fetcher) checkURL(u *url.URL) error {
	switch {
	case u.Scheme != "https" && !(f.allowHTTP && u.Scheme == "http"):
		return fmt.Errorf("scheme %q is not allowed; the JWKS URL must use https", u.Scheme)
	case u.Host == "":
		return errors.New("the URL has no host")
	case u.User != nil:
		return errors.New("the URL must not carry credentials")
	}
	return nil
}

// fetch GETs rawURL with Accept: application/json (SMART-ASYM "SHALL"),
// reads at most maxBytes and parses the JWK Set.
func (f *fetcher) fetch(ctx context.Context, rawURL string, now time.Time) (*Set, cachePolicy, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, cachePolicy{}, fmt.Errorf("%w: bad URL: %v", ErrFetch, err)
	}
	if err := f.checkURL(u); err != nil {
		return nil, cachePolicy{}, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, cachePolicy{}, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "fhirgate-jwks/1")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, cachePolicy{}, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, cachePolicy{}, fmt.Errorf("%w: HTTP status %d", ErrFetch, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, cachePolicy{}, fmt.Errorf("%w: reading the body: %v", ErrFetch, err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, cachePolicy{}, fmt.Errorf("%w: the JWK Set is larger than %d bytes", ErrFetch, f.maxBytes)
	}
	set, err := ParseFetchedSet(body)
	if err != nil {
		return nil, cachePolicy{}, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	return set, parseCachePolicy(resp.Header, now), nil
}
