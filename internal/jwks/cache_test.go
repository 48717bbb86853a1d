package jwks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/internal/logctx"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// testCache allows loopback over http, as the tests' servers need.
func testCache(c *clock, mod ...func(*Config)) *Cache {
	cfg := Config{AllowPrivate: true, AllowHTTP: true, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	return NewCache(cfg)
}

func TestGetSendsAcceptAndCaches(t *testing.T) {
	a := jwkstest.New(t, "RS384", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	srv.SetHeader("Cache-Control", "max-age=120")
	clk := newClock()
	c := testCache(clk)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		set, err := c.Get(ctx, srv.URL())
		if err != nil || len(set.Keys) != 1 {
			t.Fatalf("Get: %v %v", set, err)
		}
	}
	if n := srv.Hits.Load(); n != 1 {
		t.Fatalf("%d fetches within max-age, want 1", n)
	}
	if acc := srv.Accepts(); acc[0] != "application/json" {
		t.Fatalf("Accept = %q", acc[0])
	}
	clk.Add(121 * time.Second)
	if _, err := c.Get(ctx, srv.URL()); err != nil {
		t.Fatal(err)
	}
	if n := srv.Hits.Load(); n != 2 {
		t.Fatalf("%d fetches after max-age passed, want 2", n)
	}
}

func TestCacheLifetimes(t *testing.T) {
	tests := []struct {
		name        string
		cacheCtl    string
		after       time.Duration
		wantRefetch bool
	}{
		{"no header uses default 5m: fresh at 4m", "", 4 * time.Minute, false},
		{"no header uses default 5m: stale at 6m", "", 6 * time.Minute, true},
		{"max-age shorter than default is honoured", "max-age=30", 31 * time.Second, true},
		{"max-age longer than MaxTTL is capped", "max-age=86400", 61 * time.Minute, true},
		{"max-age within MaxTTL", "max-age=3000", 49 * time.Minute, false},
		{"no-store is never cached", "no-store", 0, true},
		{"max-age=0 is never cached", "max-age=0", 0, true},
	}
	a := jwkstest.New(t, "ES256", "a")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
			if tt.cacheCtl != "" {
				srv.SetHeader("Cache-Control", tt.cacheCtl)
			}
			clk := newClock()
			c := testCache(clk)
			if _, err := c.Get(context.Background(), srv.URL()); err != nil {
				t.Fatal(err)
			}
			clk.Add(tt.after)
			if _, err := c.Get(context.Background(), srv.URL()); err != nil {
				t.Fatal(err)
			}
			if got := srv.Hits.Load() == 2; got != tt.wantRefetch {
				t.Fatalf("refetched = %v, want %v", got, tt.wantRefetch)
			}
		})
	}
}

func TestMinTTLFloor(t *testing.T) {
	a := jwkstest.New(t, "ES256", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	srv.SetHeader("Cache-Control", "no-store")
	clk := newClock()
	c := testCache(clk, func(cfg *Config) { cfg.MinTTL = 2 * time.Second })
	for i := 0; i < 5; i++ {
		c.Get(context.Background(), srv.URL())
	}
	if n := srv.Hits.Load(); n != 1 {
		t.Fatalf("%d fetches within MinTTL, want 1", n)
	}
	clk.Add(2 * time.Second)
	c.Get(context.Background(), srv.URL())
	if n := srv.Hits.Load(); n != 2 {
		t.Fatalf("%d fetches after MinTTL, want 2", n)
	}
}

func TestSingleflight(t *testing.T) {
	a := jwkstest.New(t, "ES256", "a")
	body := jwkstest.JWKS(t, a)
	var hits atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		w.Write(body)
	}))
	defer srv.Close()
	c := testCache(newClock())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Get(context.Background(), srv.URL)
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent callers, want 1", n)
	}
}

func TestLookupRefetchesOnceOnUnknownKid(t *testing.T) {
	oldKey := jwkstest.New(t, "RS384", "old")
	newKey := jwkstest.New(t, "RS384", "new")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, oldKey))
	srv.SetHeader("Cache-Control", "max-age=3600")
	clk := newClock()
	c := testCache(clk)
	ctx := context.Background()

	if _, err := c.Lookup(ctx, "client-1", srv.URL(), "old", "RS384"); err != nil {
		t.Fatal(err)
	}
	// The client rotates: its set now also holds "new".
	srv.SetBody(jwkstest.JWKS(t, oldKey, newKey))
	k, err := c.Lookup(ctx, "client-1", srv.URL(), "new", "RS384")
	if err != nil || k.KID != "new" {
		t.Fatalf("rotated kid: %+v %v", k, err)
	}
	if n := srv.Hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (one forced refetch)", n)
	}
	// Made-up kids do not make fhirgate hammer the URL: client-1 just
	// used its refetch, so these are answered from the cache.
	for i := 0; i < 5; i++ {
		if _, err := c.Lookup(ctx, "client-1", srv.URL(), "bogus", "RS384"); !errors.Is(err, ErrNoKey) {
			t.Fatalf("bogus kid: %v", err)
		}
	}
	if n := srv.Hits.Load(); n != 2 {
		t.Fatalf("%d fetches after 5 unknown kids, want 2 (rate-limited)", n)
	}
	clk.Add(11 * time.Second)
	for i := 0; i < 3; i++ {
		c.Lookup(ctx, "client-1", srv.URL(), "bogus", "RS384")
	}
	if n := srv.Hits.Load(); n != 3 {
		t.Fatalf("%d fetches after the refetch interval, want 3", n)
	}
	// A kid that exists with another key type does not trigger a refetch.
	c.Lookup(ctx, "client-2", srv.URL(), "old", "ES384")
	if n := srv.Hits.Load(); n != 3 {
		t.Fatalf("refetched for a known kid with a wrong alg")
	}
}

func TestLastGoodSetKeptWhenRefetchFails(t *testing.T) {
	a := jwkstest.New(t, "ES384", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	srv.SetHeader("Cache-Control", "max-age=60")
	clk := newClock()
	c := testCache(clk)
	ctx := context.Background()
	if _, err := c.Lookup(ctx, "c", srv.URL(), "a", "ES384"); err != nil {
		t.Fatal(err)
	}
	srv.SetStatus(http.StatusInternalServerError)
	// A forced refetch (unknown kid) fails: the cached set stays in use.
	if _, err := c.Lookup(ctx, "c", srv.URL(), "b", "ES384"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if _, err := c.Lookup(ctx, "c", srv.URL(), "a", "ES384"); err != nil {
		t.Fatalf("known kid after failed refetch: %v", err)
	}
	// Past max-age without stale-if-error the set may not be used (SHALL NOT cache longer).
	clk.Add(61 * time.Second)
	if _, err := c.Lookup(ctx, "c", srv.URL(), "a", "ES384"); !errors.Is(err, ErrFetch) {
		t.Fatalf("expired set used: %v", err)
	}
}

func TestStaleIfError(t *testing.T) {
	a := jwkstest.New(t, "ES384", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	srv.SetHeader("Cache-Control", "max-age=60, stale-if-error=600")
	clk := newClock()
	c := testCache(clk)
	ctx := context.Background()
	if _, err := c.Get(ctx, srv.URL()); err != nil {
		t.Fatal(err)
	}
	srv.SetStatus(http.StatusServiceUnavailable)
	clk.Add(5 * time.Minute)
	if _, err := c.Lookup(ctx, "c", srv.URL(), "a", "ES384"); err != nil {
		t.Fatalf("stale-if-error window: %v", err)
	}
	clk.Add(6 * time.Minute)
	if _, err := c.Lookup(ctx, "c", srv.URL(), "a", "ES384"); !errors.Is(err, ErrFetch) {
		t.Fatalf("after the window: %v", err)
	}
}

func TestFetchFailures(t *testing.T) {
	a := jwkstest.New(t, "ES256", "a")
	big := append([]byte(`{"keys":[],"pad":"`), bytes.Repeat([]byte("x"), 200<<10)...)
	big = append(big, '"', '}')
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"status 404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP status 404"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }, "keys"},
		{"too large", func(w http.ResponseWriter, r *http.Request) { w.Write(big) }, "larger than"},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(600 * time.Millisecond)
			w.Write(jwkstest.JWKS(t, a))
		}, ""}, // either the header timeout or the context deadline fires first
		{"too many redirects", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
		}, "redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := testCache(newClock(), func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
			_, err := c.Get(context.Background(), srv.URL+"/jwks")
			if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrFetch mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSSRFGuardByDefault(t *testing.T) {
	a := jwkstest.New(t, "ES256", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	urls := []string{
		srv.URL(), // 127.0.0.1
		"http://localhost:" + port + "/jwks",
		"http://[::1]:" + port + "/jwks",
		"http://10.0.0.1:" + port + "/jwks",
		"http://192.168.1.10/jwks",
		"http://169.254.169.254/latest/meta-data",
		"http://100.64.0.1/jwks",
		"http://[fd00::1]/jwks",
		"http://0.0.0.0:" + port + "/jwks",
	}
	c := NewCache(Config{AllowHTTP: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ConnectTimeout: time.Second})
	for _, u := range urls {
		t.Run(u, func(t *testing.T) {
			_, err := c.Get(context.Background(), u)
			if !errors.Is(err, ErrBlockedAddress) {
				t.Fatalf("error = %v, want ErrBlockedAddress", err)
			}
		})
	}
	if n := srv.Hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times", n)
	}
}

func TestHTTPSRequired(t *testing.T) {
	a := jwkstest.New(t, "ES256", "a")
	plain := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	c := NewCache(Config{AllowPrivate: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := c.Get(context.Background(), plain.URL()); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http URL accepted: %v", err)
	}
	for _, bad := range []string{"ftp://example.com/jwks", "https:///jwks", "https://user:pw@example.com/jwks", "::"} {
		if _, err := c.Get(context.Background(), bad); !errors.Is(err, ErrFetch) {
			t.Errorf("%q: %v", bad, err)
		}
	}

	body := jwkstest.JWKS(t, a)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer tlsSrv.Close()
	c = NewCache(Config{AllowPrivate: true, TLSConfig: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig})
	if set, err := c.Get(context.Background(), tlsSrv.URL+"/jwks"); err != nil || len(set.Keys) != 1 {
		t.Fatalf("https fetch: %v %v", set, err)
	}
	// Redirect from https to http is refused without AllowHTTP.
	redir := httptest.NewTLSServer(http.RedirectHandler(plain.URL(), http.StatusFound))
	defer redir.Close()
	c = NewCache(Config{AllowPrivate: true, TLSConfig: redir.Client().Transport.(*http.Transport).TLSClientConfig,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := c.Get(context.Background(), redir.URL+"/jwks"); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("redirect to http accepted: %v", err)
	}
}

// TestRedirectToPrivateRefused treats 127.0.0.1 as public and 127.0.0.2 as
// private, so a real redirect between two loopback servers exercises the
// dial-time check that also protects against DNS rebinding.
func TestRedirectToPrivateRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	a := jwkstest.New(t, "ES256", "a")
	var internalHits atomic.Int64
	internal := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Write(jwkstest.JWKS(t, a))
	})}}
	internal.Start()
	defer internal.Close()
	public := httptest.NewServer(http.RedirectHandler(internal.URL+"/jwks", http.StatusFound))
	defer public.Close()
	direct := jwkstest.NewServer(t, jwkstest.JWKS(t, a))

	policy := func(ip netip.Addr) string {
		if ip == netip.MustParseAddr("127.0.0.1") {
			return ""
		}
		return BlockedReason(ip)
	}
	c := NewCache(Config{AllowHTTP: true, blocked: policy, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := c.Get(context.Background(), direct.URL()); err != nil {
		t.Fatalf("the 'public' server is not reachable: %v", err)
	}
	_, err = c.Get(context.Background(), public.URL+"/jwks")
	if !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("redirect to 127.0.0.2: error = %v, want ErrBlockedAddress", err)
	}
	if internalHits.Load() != 0 {
		t.Fatal("the internal server was reached")
	}
}

func TestForget(t *testing.T) {
	a := jwkstest.New(t, "ES256", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	c := testCache(newClock())
	c.Get(context.Background(), srv.URL())
	c.Forget(srv.URL())
	c.Get(context.Background(), srv.URL())
	if n := srv.Hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 after Forget", n)
	}
}

func TestCallerContextCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer func() { close(release); srv.Close() }()
	c := testCache(newClock())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, srv.URL); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v", err)
	}
}

// TestFetchFailureLogCarriesRequestID checks that the warnings about a
// failed fetch are logged with the caller's context, so that they carry
// the request id of the token request that needed the set.
func TestFetchFailureLogCarriesRequestID(t *testing.T) {
	a := jwkstest.New(t, "ES384", "a")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, a))
	srv.SetHeader("Cache-Control", "max-age=60, stale-if-error=600")
	var logs bytes.Buffer
	clk := newClock()
	c := testCache(clk, func(cfg *Config) {
		cfg.Logger = slog.New(logctx.NewHandler(slog.NewJSONHandler(&logs, nil)))
	})
	if _, err := c.Get(context.Background(), srv.URL()); err != nil {
		t.Fatal(err)
	}
	srv.SetStatus(http.StatusServiceUnavailable)
	tests := []struct {
		name, requestID, msg string
		after                time.Duration
	}{
		{"stale set used", "req-stale", "jwks refresh failed; using the last good set within stale-if-error", 2 * time.Minute},
		{"no set left", "req-failed", "jwks fetch failed", 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			clk.Add(tt.after)
			ctx := logctx.With(context.Background(), slog.String("request_id", tt.requestID))
			c.Lookup(ctx, "c", srv.URL(), "a", "ES384")
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if line["msg"] != tt.msg || line["request_id"] != tt.requestID {
				t.Fatalf("log line = %v, want %q with request_id %s", line, tt.msg, tt.requestID)
			}
		})
	}
}
