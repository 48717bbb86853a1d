package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/smarttest"
	"github.com/fhirgate/fhirgate/smart"
)

// clock is a settable clock shared by the server and the client under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var keyCache sync.Map

// testKey returns a key for alg, generated once per test binary.
func testKey(t testing.TB, alg string) *client.Key {
	t.Helper()
	if k, ok := keyCache.Load(alg); ok {
		return k.(*client.Key)
	}
	bits := 0
	if strings.HasPrefix(alg, "RS") {
		bits = 2048
	}
	k, err := client.GenerateKey(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	keyCache.Store(alg, k)
	return k
}

// newServer starts a test server with client "c1" registered for key.
func newServer(t testing.TB, key *client.Key, opts smarttest.Options) *smarttest.Server {
	t.Helper()
	srv := smarttest.New(t, opts)
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	if err := srv.RegisterClient(smarttest.Client{ID: "c1", JWKS: jwks, Scopes: []string{"system/*.rs", "system/Patient.rs"}}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func newSource(t testing.TB, srv *smarttest.Server, key *client.Key, mod func(*client.Config)) *client.TokenSource {
	t.Helper()
	cfg := client.Config{
		ClientID:    "c1",
		Key:         key,
		Scopes:      []string{"system/*.rs"},
		FHIRBaseURL: srv.FHIRBaseURL(),
		Retry:       client.Retry{Initial: time.Millisecond, Max: 50 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	ts, err := client.NewTokenSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestTokenSourceEveryAlgorithm(t *testing.T) {
	for _, alg := range client.Algorithms() {
		t.Run(alg, func(t *testing.T) {
			key := testKey(t, alg)
			srv := newServer(t, key, smarttest.Options{})
			ts := newSource(t, srv, key, nil)
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Extra("scope") != "system/*.rs" {
				t.Errorf("token = %+v scope %v", tok, tok.Extra("scope"))
			}
			if d := time.Until(tok.Expiry); d < 4*time.Minute || d > 5*time.Minute {
				t.Errorf("expiry in %v, want about 5 minutes", d)
			}
			again, _ := ts.Token()
			if again.AccessToken != tok.AccessToken || srv.TokenRequests() != 1 {
				t.Errorf("second Token: new token or %d requests; want the cached one", srv.TokenRequests())
			}
			if u, _ := ts.TokenURL(context.Background()); u != srv.TokenURL() {
				t.Errorf("discovered %s, want %s", u, srv.TokenURL())
			}
		})
	}
}

func TestTokenSourceProactiveRefresh(t *testing.T) {
	clk := newClock()
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{Now: clk.Now, TokenLifetime: 300 * time.Second})
	ts := newSource(t, srv, key, func(c *client.Config) {
		c.Now = clk.Now
		c.RefreshMargin = 60 * time.Second
	})
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(239 * time.Second) // still outside the margin
	if tok, _ := ts.Token(); tok.AccessToken != first.AccessToken || srv.TokenRequests() != 1 {
		t.Fatalf("refreshed %d times before the margin", srv.TokenRequests()-1)
	}
	clk.Add(2 * time.Second) // 241 s: inside the last minute, not expired
	if !clk.Now().Before(first.Expiry) {
		t.Fatal("test bug: the first token has already expired")
	}
	second, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken || srv.TokenRequests() != 2 {
		t.Errorf("no proactive refresh: %d requests", srv.TokenRequests())
	}
}

func TestTokenSourceMarginCappedForShortTokens(t *testing.T) {
	clk := newClock()
	key := testKey(t, client.ES256)
	srv := newServer(t, key, smarttest.Options{Now: clk.Now, TokenLifetime: 10 * time.Second})
	ts := newSource(t, srv, key, func(c *client.Config) { c.Now = clk.Now })
	first, _ := ts.Token()
	clk.Add(4 * time.Second) // the default margin (1 min) would refresh at once; half of 10 s does not
	if tok, _ := ts.Token(); tok.AccessToken != first.AccessToken {
		t.Error("refreshed a 10 s token after 4 s")
	}
	clk.Add(2 * time.Second)
	if tok, _ := ts.Token(); tok.AccessToken == first.AccessToken {
		t.Error("did not refresh a 10 s token after 6 s")
	}
}

func TestTokenSourceKeepsValidTokenWhenRefreshFails(t *testing.T) {
	clk := newClock()
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{Now: clk.Now, TokenLifetime: 300 * time.Second})
	ts := newSource(t, srv, key, func(c *client.Config) {
		c.Now = clk.Now
		c.Retry.Attempts = 1
	})
	first, _ := ts.Token()
	srv.Set(func(b *smarttest.Behavior) { b.TokenFailures = 100 })
	clk.Add(250 * time.Second)
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != first.AccessToken {
		t.Fatalf("refresh failure hid a valid token: %v", err)
	}
	clk.Add(60 * time.Second) // now expired
	_, err = ts.Token()
	var oe *smart.Error
	if !errors.As(err, &oe) || oe.Code != smart.ErrTemporarilyUnavailable || oe.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want the server's temporarily_unavailable", err)
	}
}

func TestTokenSourceOneRequestForManyCallers(t *testing.T) {
	key := testKey(t, client.RS384)
	srv := newServer(t, key, smarttest.Options{})
	srv.Set(func(b *smarttest.Behavior) { b.TokenDelay = 200 * time.Millisecond })
	ts := newSource(t, srv, key, nil)
	var wg sync.WaitGroup
	tokens := make([]string, 100)
	start := make(chan struct{})
	for i := range tokens {
		wg.Go(func() {
			<-start
			tok, err := ts.TokenContext(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = tok.AccessToken
		})
	}
	close(start)
	wg.Wait()
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("100 callers caused %d token requests, want 1", n)
	}
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatal("callers got different tokens")
		}
	}
}

func TestTokenSourceCallerContextDoesNotCancelSharedRefresh(t *testing.T) {
	key := testKey(t, client.ES256)
	srv := newServer(t, key, smarttest.Options{})
	srv.Set(func(b *smarttest.Behavior) { b.TokenDelay = 100 * time.Millisecond })
	ts := newSource(t, srv, key, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := ts.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want the first one to have carried on", n)
	}
}

func TestTokenSourceRetriesTransientFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter int
		failures   int
		attempts   int
		wantErr    string
		wantReqs   int
	}{
		{name: "503 twice", status: 503, failures: 2, wantReqs: 3},
		{name: "429 then fine", status: 429, failures: 1, wantReqs: 2},
		{name: "too many failures", status: 503, failures: 10, attempts: 3, wantReqs: 3, wantErr: "temporarily_unavailable"},
		{name: "Retry-After too long", status: 503, failures: 1, retryAfter: 120, wantReqs: 1, wantErr: "the server asks to retry after 2m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := testKey(t, client.ES384)
			srv := newServer(t, key, smarttest.Options{})
			srv.Set(func(b *smarttest.Behavior) {
				b.TokenFailures, b.TokenFailureStatus, b.TokenRetryAfter = tt.failures, tt.status, tt.retryAfter
			})
			ts := newSource(t, srv, key, func(c *client.Config) { c.Retry.Attempts = tt.attempts })
			_, err := ts.Token()
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if srv.TokenRequests() != tt.wantReqs || ts.Requests() != int64(tt.wantReqs) {
				t.Errorf("server saw %d requests, source counted %d, want %d", srv.TokenRequests(), ts.Requests(), tt.wantReqs)
			}
		})
	}
}

func TestTokenSourceOAuthErrors(t *testing.T) {
	key := testKey(t, client.ES384)
	other := testKey(t, client.ES256)
	tests := []struct {
		name     string
		mod      func(*client.Config)
		wantCode string
		wantDesc string
		status   int
	}{
		{"unknown client", func(c *client.Config) { c.ClientID = "nobody" }, smart.ErrInvalidClient, `unknown client "nobody"`, 401},
		{"unregistered key", func(c *client.Config) { c.Key = other }, smart.ErrInvalidClient, "0 keys match kid", 401},
		{"right kid, wrong curve", func(c *client.Config) { c.Key = other.WithKID(key.KID()) }, smart.ErrInvalidClient, "ES256 needs another curve than P-384", 401},
		{"jku not registered", func(c *client.Config) { c.JKU = "https://evil.example/jwks.json" }, smart.ErrInvalidClient, "jku is not the registered jwks_uri", 401},
		{"scope not registered", func(c *client.Config) { c.Scopes = []string{"system/*.cruds"} }, smart.ErrInvalidScope, "none of the requested scopes", 400},
		{"aud not the token endpoint", func(c *client.Config) { c.FHIRBaseURL = "" }, smart.ErrInvalidClient, "is not the token endpoint", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, key, smarttest.Options{})
			ts := newSource(t, srv, key, func(c *client.Config) {
				c.TokenURL = srv.TokenURL()
				if tt.name == "aud not the token endpoint" {
					c.TokenURL += "?tenant=1" // same endpoint, different URL
				}
				tt.mod(c)
			})
			_, err := ts.Token()
			var oe *smart.Error
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v (%T), want a *smart.Error", err, err)
			}
			if oe.Code != tt.wantCode || oe.Status != tt.status || !strings.Contains(oe.Description, tt.wantDesc) {
				t.Errorf("got %s %d %q, want %s %d %q", oe.Code, oe.Status, oe.Description, tt.wantCode, tt.status, tt.wantDesc)
			}
			if srv.TokenRequests() != 1 {
				t.Errorf("%d requests: a 4xx must not be retried", srv.TokenRequests())
			}
		})
	}
}

// TestTokenSourceWrongSignature registers the public key of one key under
// the kid of another, so that only the signature check can catch it.
func TestTokenSourceWrongSignature(t *testing.T) {
	key := testKey(t, client.RS384)
	impostor, err := client.GenerateKey(client.RS384, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, key, smarttest.Options{})
	ts := newSource(t, srv, key, func(c *client.Config) { c.Key = impostor.WithKID(key.KID()) })
	_, err = ts.Token()
	var oe *smart.Error
	if !errors.As(err, &oe) || oe.Code != smart.ErrInvalidClient || oe.Description != "bad signature" {
		t.Fatalf("err = %v, want invalid_client: bad signature", err)
	}
}

func TestTokenSourceConfigErrors(t *testing.T) {
	key := testKey(t, client.ES256)
	tests := []struct {
		name string
		cfg  client.Config
		want string
	}{
		{"no client", client.Config{Key: key, TokenURL: "https://as/token"}, "ClientID is required"},
		{"no key", client.Config{ClientID: "c", TokenURL: "https://as/token"}, "Key is required"},
		{"no endpoint", client.Config{ClientID: "c", Key: key}, "needs TokenURL or FHIRBaseURL"},
		{"relative base", client.Config{ClientID: "c", Key: key, FHIRBaseURL: "example.org/fhir"}, `FHIRBaseURL "example.org/fhir" is not an absolute http(s) URL`},
		{"long assertion", client.Config{ClientID: "c", Key: key, TokenURL: "https://as/token", AssertionLifetime: time.Hour}, "AssertionLifetime 1h0m0s is outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := client.NewTokenSource(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDiscoveryErrors(t *testing.T) {
	key := testKey(t, client.ES256)
	srv := newServer(t, key, smarttest.Options{})
	ts := newSource(t, srv, key, func(c *client.Config) { c.FHIRBaseURL = srv.URL + "/nothing-here" })
	_, err := ts.Token()
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 || !strings.Contains(err.Error(), "/nothing-here/.well-known/smart-configuration: 404") {
		t.Fatalf("err = %v, want a 404 naming the well-known URL", err)
	}
	if srv.TokenRequests() != 0 {
		t.Error("a token request was sent without an endpoint")
	}
	conf, err := client.Discover(context.Background(), nil, srv.FHIRBaseURL()+"/")
	if err != nil || conf.TokenEndpoint != srv.TokenURL() {
		t.Fatalf("Discover with a trailing slash: %v %+v", err, conf)
	}
}

// TestRequestTokenReplay shows the server catches a reused assertion, which
// is what makes the retry tests above prove that every try signs anew.
func TestRequestTokenReplay(t *testing.T) {
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{})
	jwt, err := client.Assertion{Key: key, ClientID: "c1", TokenURL: srv.TokenURL()}.Sign(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tr, err := client.RequestToken(ctx, nil, srv.TokenURL(), jwt, "system/*.rs system/Observation.rs")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Scope != "system/*.rs" || tr.ExpiresIn != 300 || !json.Valid(tr.Raw) {
		t.Errorf("response = %+v", tr)
	}
	_, err = client.RequestToken(ctx, nil, srv.TokenURL(), jwt, "system/*.rs")
	var oe *smart.Error
	if !errors.As(err, &oe) || oe.Code != smart.ErrInvalidClient || !strings.Contains(oe.Description, "replay") {
		t.Fatalf("err = %v, want invalid_client for the replay", err)
	}
}
