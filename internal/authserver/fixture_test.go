package authserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/authserver/memreplay"
	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/internal/tokens"
	"github.com/fhirgate/fhirgate/smart"
)

const baseURL = "https://fhirgate.example.org"

// memClients is an in-memory RegisteredClientStore, the seam the SQL
// store fills: a client's registration is set when its id is inserted and
// kept while it is replaced.
type memClients struct {
	mu      sync.Mutex
	docs    map[string][]byte
	hashes  map[string]string
	regs    map[string]string
	lookups int
}

func (m *memClients) LookupClient(ctx context.Context, id string) ([]byte, string, bool, error) {
	doc, hash, _, ok, err := m.LookupRegisteredClient(ctx, id)
	return doc, hash, ok, err
}

func (m *memClients) LookupRegisteredClient(_ context.Context, id string) ([]byte, string, string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	doc, ok := m.docs[id]
	return doc, m.hashes[id], m.regs[id], ok, nil
}

// put creates or replaces a client.
func (m *memClients) put(id string, doc []byte, hash string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.docs[id]; !ok {
		m.regs[id] = newJTI()
	}
	m.docs[id], m.hashes[id] = doc, hash
}

// plainClients hides the registration: a store that cannot tell it.
type plainClients struct{ m *memClients }

func (p plainClients) LookupClient(ctx context.Context, id string) ([]byte, string, bool, error) {
	return p.m.LookupClient(ctx, id)
}

// memKeys is an in-memory tokens.KeyStore.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]tokens.SigningKey
}

func (m *memKeys) ListSigningKeys(context.Context) ([]tokens.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tokens.SigningKey
	for _, k := range m.keys {
		out = append(out, k)
	}
	return out, nil
}

func (m *memKeys) PutSigningKey(_ context.Context, k tokens.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// As KeyStore requires: an existing key keeps its key material.
	if old, ok := m.keys[k.KID]; ok {
		old.SignUntil, old.RetireAfter = k.SignUntil, k.RetireAfter
		k = old
	}
	m.keys[k.KID] = k
	return nil
}

func (m *memKeys) DeleteSigningKey(_ context.Context, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, kid)
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	t       testing.TB
	clk     *clock
	clients *memClients
	replay  *memreplay.Store
	srv     *Server
	logs    *syncBuffer
}

type fixtureOption func(*Config)

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		clients: &memClients{docs: map[string][]byte{}, hashes: map[string]string{}, regs: map[string]string{}}, logs: &syncBuffer{}}
	f.replay = memreplay.New(f.clk.Now)
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ring, err := tokens.OpenKeyring(context.Background(), tokens.KeyringConfig{
		Store: &memKeys{keys: map[string]tokens.SigningKey{}}, Now: f.clk.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		BaseURL: baseURL + "/", Clients: f.clients, Replay: f.replay, Keyring: ring,
		JWKS: jwks.NewCache(jwks.Config{AllowPrivate: true, AllowHTTP: true, Now: f.clk.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}),
		Now: f.clk.Now, Logger: logger,
	}
	for _, o := range opts {
		o(&cfg)
	}
	f.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// register stores a client as the admin API will: ParseClientFor, then
// StorageForm.
func (f *fixture) register(id string, body map[string]any) *Client {
	f.t.Helper()
	b, _ := json.Marshal(body)
	c, err := ParseClientFor(id, b)
	if err != nil {
		f.t.Fatalf("register %s: %v", id, err)
	}
	doc, hash, err := c.StorageForm()
	if err != nil {
		f.t.Fatal(err)
	}
	f.clients.put(id, doc, hash)
	f.srv.ClientChanged(id)
	return c
}

func (f *fixture) unregister(id string) {
	f.clients.mu.Lock()
	delete(f.clients.docs, id)
	f.clients.mu.Unlock()
	f.srv.ClientChanged(id)
}

// backendClient is the seed's bulk-api-client with the given key source.
func backendClient(keys map[string]any, scope ...string) map[string]any {
	if len(scope) == 0 {
		scope = []string{"system/*.read"}
	}
	c := map[string]any{
		"type":   "bulk-api-client",
		"active": true,
		"auth": map[string]any{"client_credentials": map[string]any{
			"client_assertion_types":  []string{smart.AssertionTypeJWTBearer},
			"access_token_expiration": 300, "token_format": "jwt"}},
		"scope":       scope,
		"grant_types": []string{"client_credentials"},
	}
	for k, v := range keys {
		c[k] = v
	}
	return c
}

func inlineJWKS(t testing.TB, pairs ...*jwkstest.KeyPair) map[string]any {
	var set map[string]any
	json.Unmarshal(jwkstest.JWKS(t, pairs...), &set)
	return map[string]any{"jwks": set}
}

func newJTI() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// claims returns valid assertion claims for clientID at the fixture's time.
func (f *fixture) claims(clientID string) map[string]any {
	now := f.clk.Now()
	return map[string]any{"iss": clientID, "sub": clientID, "aud": baseURL + "/auth/token",
		"exp": now.Add(4 * time.Minute).Unix(), "iat": now.Unix(), "jti": newJTI()}
}

// tokenRequest is a valid private_key_jwt request with the assertion.
func tokenRequest(assertion, scope string) TokenRequest {
	return TokenRequest{GrantType: "client_credentials", Scope: scope,
		ClientAssertionType: smart.AssertionTypeJWTBearer, ClientAssertion: assertion}
}

// oauthError asserts err is a *smart.Error with code and status.
func oauthError(t testing.TB, err error, code string, status int) *smart.Error {
	t.Helper()
	var oe *smart.Error
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T) is not a *smart.Error", err, err)
	}
	if oe.Code != code || oe.Status != status {
		t.Fatalf("error = %s/%d %q, want %s/%d", oe.Code, oe.Status, oe.Description, code, status)
	}
	return oe
}
