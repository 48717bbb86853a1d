package tokens

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
)

// memKeys is an in-memory KeyStore, the seam the SQL store fills.
type memKeys struct {
	mu   sync.Mutex
	keys map[string]SigningKey
}

func newMemKeys() *memKeys { return &memKeys{keys: map[string]SigningKey{}} }

func (m *memKeys) ListSigningKeys(context.Context) ([]SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SigningKey
	for _, k := range m.keys {
		out = append(out, k)
	}
	return out, nil
}

func (m *memKeys) PutSigningKey(_ context.Context, k SigningKey) error {
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

// activeSet is a ClientActivity backed by maps: every client is active
// unless deactivated, with the registration in reg ("" when unset).
type activeSet struct {
	mu       sync.Mutex
	inactive map[string]bool
	reg      map[string]string
}

func (a *activeSet) ClientRegistration(_ context.Context, id string) (string, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reg[id], !a.inactive[id], nil
}

func (a *activeSet) register(id, reg string) { a.mu.Lock(); a.reg[id] = reg; a.mu.Unlock() }

func (a *activeSet) deactivate(id string) { a.mu.Lock(); a.inactive[id] = true; a.mu.Unlock() }

const issuer = "https://fhirgate.example.org"

type fixture struct {
	clk     *clock
	store   *memKeys
	ring    *Keyring
	svc     *Service
	clients *activeSet
}

func newFixture(t testing.TB, alg string) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, store: newMemKeys(),
		clients: &activeSet{inactive: map[string]bool{}, reg: map[string]string{}}}
	var err error
	f.ring, err = OpenKeyring(context.Background(), KeyringConfig{Store: f.store, Alg: alg, Now: f.clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = f.service(t, issuer, 0)
	return f
}

func (f *fixture) service(t testing.TB, iss string, size int) *Service {
	s, err := New(Config{Issuer: iss, Keyring: f.ring, Clients: f.clients, Now: f.clk.Now, CacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueAndVerify(t *testing.T) {
	f := newFixture(t, "ES256")
	tok, claims, err := f.svc.Issue(Client{ID: "bulk-client"}, "system/*.read", 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := parseHeader(tok)
	if err != nil || hdr.Alg != "ES256" || hdr.Typ != "at+jwt" || hdr.KID != f.ring.SigningKID() {
		t.Fatalf("header = %+v, %v", hdr, err)
	}
	got, err := f.svc.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Issuer: issuer, Subject: "bulk-client", ClientID: "bulk-client", Scope: "system/*.read",
		IssuedAt: f.clk.Now().Unix(), Expires: f.clk.Now().Add(300 * time.Second).Unix(), ID: claims.ID}
	if *got != want || len(claims.ID) < 20 {
		t.Fatalf("claims = %+v, want %+v", *got, want)
	}
	// The published JWKS verifies the token with plain jwx, as an outside
	// resource server would.
	set, err := jwk.Parse(f.ring.PublicJWKS())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
		t.Fatalf("JWKS does not verify the token: %v", err)
	}
	if strings.Contains(string(f.ring.PublicJWKS()), `"d"`) {
		t.Fatal("public JWKS holds a private member")
	}
}

func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	tok, _, err := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	kid := f.ring.SigningKID()
	priv := f.ring.signingKey().priv
	claims := map[string]any{"iss": issuer, "sub": "c1", "client_id": "c1", "scope": "system/*.read",
		"iat": f.clk.Now().Unix(), "exp": f.clk.Now().Add(time.Minute).Unix(), "jti": "x"}
	signWith := func(header map[string]any, c map[string]any) string {
		kp := &jwkstest.KeyPair{KID: kid, Alg: "ES256", Private: priv}
		return kp.Sign(t, header, c)
	}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range claims {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	hsKey := []byte(f.ring.PublicJWKS())
	hs := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + kid + `","typ":"at+jwt"}`))
		p := base64.RawURLEncoding.EncodeToString(mustJSON(t, claims))
		m := hmac.New(sha256.New, hsKey)
		m.Write([]byte(h + "." + p))
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	other := jwkstest.New(t, "ES256", kid)
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"empty", "", "empty or oversized"},
		{"oversized", strings.Repeat("a", MaxTokenBytes+1), "empty or oversized"},
		{"garbage", "not-a-token", "not a compact JWS"},
		{"bad header encoding", "!!!." + parts[1] + "." + parts[2], "not base64url"},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, with("scope", "system/*.*"))) + "." + parts[2], "bad signature"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")), "bad signature"},
		{"alg none", jwkstest.Unsigned(t, map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}, claims, nil), "unexpected token header"},
		{"HS256 with the public JWKS as secret", hs, "unexpected token header"},
		{"unknown kid", signWith(map[string]any{"kid": "nope", "typ": "at+jwt"}, claims), "unknown or retired"},
		{"signed by another key with our kid", other.Sign(t, map[string]any{"typ": "at+jwt"}, claims), "bad signature"},
		{"typ JWT (e.g. a client assertion)", signWith(map[string]any{"typ": "JWT"}, claims), "unexpected token header"},
		{"crit header", signWith(map[string]any{"typ": "at+jwt", "crit": []string{"exp"}}, claims), "unexpected token header"},
		{"other issuer", signWith(map[string]any{"typ": "at+jwt"}, with("iss", "https://evil.example")), "issued by someone else"},
		{"expired", signWith(map[string]any{"typ": "at+jwt"}, with("exp", f.clk.Now().Unix())), "expired"},
		{"no exp", signWith(map[string]any{"typ": "at+jwt"}, with("exp", 0)), "expired"},
		{"issued in the future", signWith(map[string]any{"typ": "at+jwt"}, with("iat", f.clk.Now().Add(time.Hour).Unix())), "in the future"},
		{"sub differs from client_id", signWith(map[string]any{"typ": "at+jwt"}, with("sub", "c2")), "no client"},
		{"claims not an object", signWith(map[string]any{"typ": "at+jwt"}, nil), "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Verify(ctx, tt.token)
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify error = %v, want ErrInvalidToken: %s", err, tt.reason)
			}
		})
	}
	// The untouched token is fine (the table did not break the fixture).
	if _, err := f.svc.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeactivatedClientStopsAtOnce(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	tok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	if _, err := f.svc.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clients.deactivate("c1")
	if _, err := f.svc.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("cached token of an inactive client: %v", err)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	tok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 60*time.Second)
	if _, err := f.svc.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(60 * time.Second)
	if _, err := f.svc.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired cached token: %v", err)
	}
}

func TestRotationOverlap(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	oldKID := f.ring.SigningKID()
	oldTok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	if err := f.ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	newKID := f.ring.SigningKID()
	if newKID == oldKID || newKID == "" {
		t.Fatalf("rotate kept kid %q", newKID)
	}
	newTok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	if h, _ := parseHeader(newTok); h.KID != newKID {
		t.Fatalf("new token signed by %q", h.KID)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := f.svc.Verify(ctx, tok); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}
	var set struct{ Keys []struct{ KID string } }
	json.Unmarshal(f.ring.PublicJWKS(), &set)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS holds %d keys during overlap, want 2", len(set.Keys))
	}
	// After the grace period the old key is deleted and its tokens fail,
	// even from the verified cache.
	f.clk.Add(time.Hour)
	if err := f.ring.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.store.keys[oldKID]; ok {
		t.Fatal("retired key still stored")
	}
	json.Unmarshal(f.ring.PublicJWKS(), &set)
	if len(set.Keys) != 1 || set.Keys[0].KID != newKID {
		t.Fatalf("JWKS after retirement: %+v", set)
	}
	if _, err := f.svc.Verify(ctx, oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a retired key: %v", err)
	}
}

func TestScheduledRotation(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	first := f.ring.SigningKID()
	f.clk.Add(29 * 24 * time.Hour)
	f.ring.Maintain(ctx)
	if f.ring.SigningKID() != first {
		t.Fatal("rotated too early")
	}
	f.clk.Add(24 * time.Hour)
	if err := f.ring.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if k := f.ring.SigningKID(); k == first || k == "" {
		t.Fatalf("not rotated after 30 days: %q", k)
	}
}

func TestKeysPersistAcrossRestart(t *testing.T) {
	f := newFixture(t, "ES256")
	tok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	ring2, err := OpenKeyring(context.Background(), KeyringConfig{Store: f.store, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.store.keys) != 1 || ring2.SigningKID() != f.ring.SigningKID() {
		t.Fatalf("restart made a new key: %d keys", len(f.store.keys))
	}
	svc2, _ := New(Config{Issuer: issuer, Keyring: ring2, Clients: f.clients, Now: f.clk.Now})
	if _, err := svc2.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestOtherReplicaRotation(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	replicaB, _ := OpenKeyring(ctx, KeyringConfig{Store: f.store, Now: f.clk.Now})
	svcB, _ := New(Config{Issuer: issuer, Keyring: replicaB, Clients: f.clients, Now: f.clk.Now})
	if err := f.ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	f.clk.Add(6 * time.Second) // past B's reload interval
	if _, err := svcB.Verify(ctx, tok); err != nil {
		t.Fatalf("replica B does not know A's new key: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t, "ES256")
	svc := f.service(t, issuer, 10)
	for i := 0; i < 50; i++ {
		tok, _, _ := svc.Issue(Client{ID: fmt.Sprint("c", i)}, "system/*.read", 300*time.Second)
		if _, err := svc.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := svc.cache.len(); n > 10 {
		t.Fatalf("cache holds %d entries, max 10", n)
	}
}

func TestSigningAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "ES384", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			tok, _, err := f.svc.Issue(Client{ID: "c1"}, "system/*.read", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			a, _ := jwa.LookupSignatureAlgorithm(alg)
			set, _ := jwk.Parse(f.ring.PublicJWKS())
			if _, err := jws.Verify([]byte(tok), jws.WithKeySet(set)); err != nil {
				t.Fatalf("%s token does not verify with the JWKS: %v", a, err)
			}
		})
	}
	if _, err := OpenKeyring(context.Background(), KeyringConfig{Store: newMemKeys(), Alg: "HS256"}); err == nil {
		t.Fatal("HS256 keyring accepted")
	}
}

// TestRegisteredAgainClientStopsOldTokens: a token names the registration
// of its client; once the client is deleted and registered again under the
// same id, the old token (even one in the verified cache) is refused and
// only tokens of the new registration verify.
func TestRegisteredAgainClientStopsOldTokens(t *testing.T) {
	f := newFixture(t, "ES256")
	ctx := context.Background()
	f.clients.register("c1", "reg-1")
	old, claims, err := f.svc.Issue(Client{ID: "c1", Registration: "reg-1"}, "system/*.read", 300*time.Second)
	if err != nil || claims.Registration != "reg-1" {
		t.Fatalf("Issue: %+v %v", claims, err)
	}
	if _, err := f.svc.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	f.clients.register("c1", "reg-2")
	tests := []struct {
		name string
		tok  func() string
		want error
	}{
		{"token of the old registration", func() string { return old }, ErrInvalidToken},
		{"token without a registration", func() string {
			tok, _, _ := f.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
			return tok
		}, ErrInvalidToken},
		{"token of the new registration", func() string {
			tok, _, _ := f.svc.Issue(Client{ID: "c1", Registration: "reg-2"}, "system/*.read", 300*time.Second)
			return tok
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Verify(ctx, tt.tok())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.want != nil && !strings.Contains(err.Error(), "registered again") {
				t.Fatalf("error %q does not say why", err)
			}
		})
	}
}
