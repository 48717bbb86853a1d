package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/smart"
)

// The seed aidbox-client-secret-basic.txt: a client with a secret and
// grant type basic calls /fhir with HTTP Basic.
var seedBasicClient = map[string]any{
	"id":          "client-confidential-symmetric",
	"secret":      "secret",
	"grant_types": []string{"basic"},
}

func basicClient(secret string) map[string]any {
	return map[string]any{"secret": secret, "grant_types": []string{"basic"}}
}

func TestAuthenticateBasic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register("client-confidential-symmetric", seedBasicClient)
	c, err := f.srv.AuthenticateBasic(ctx, "client-confidential-symmetric", "secret")
	if err != nil {
		t.Fatal(err)
	}
	p := c.BasicPrincipal()
	if p.ClientID != "client-confidential-symmetric" || p.Method != "basic" ||
		!p.Scopes.Allows("Observation", smart.PermSearch) || !p.Scopes.Allows("Patient", smart.PermDelete) {
		t.Fatalf("principal = %+v", p)
	}
	// A hot client does not pay argon2id on every request.
	runs := f.srv.hashRuns.Load()
	for i := 0; i < 50; i++ {
		if _, err := f.srv.AuthenticateBasic(ctx, "client-confidential-symmetric", "secret"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.srv.hashRuns.Load() - runs; n != 0 {
		t.Fatalf("%d argon2id runs for 50 cached authentications", n)
	}
	// The cache only lasts SecretCacheTTL.
	f.clk.Add(61 * time.Second)
	f.srv.AuthenticateBasic(ctx, "client-confidential-symmetric", "secret")
	if n := f.srv.hashRuns.Load() - runs; n != 1 {
		t.Fatalf("%d argon2id runs after the cache TTL, want 1", n)
	}
}

func TestAuthenticateBasicRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register("basic", basicClient("secret"))
	inactive := map[string]any{"secret": "x", "grant_types": []string{"basic"}, "active": false}
	f.register("inactive", inactive)
	f.register("cc-only", map[string]any{"secret": "cc-secret", "grant_types": []string{"client_credentials"}})
	tests := []struct {
		name, id, secret, desc string
	}{
		{"wrong secret", "basic", "Secret", "authentication failed"},
		{"empty secret", "basic", "", "authentication failed"},
		{"unknown client", "nobody", "secret", "authentication failed"},
		{"inactive client", "inactive", "x", "not active"},
		{"no basic grant", "cc-only", "cc-secret", `grant type "basic" is not registered`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.srv.AuthenticateBasic(ctx, tt.id, tt.secret)
			if c != nil {
				t.Fatal("authenticated")
			}
			oe := oauthError(t, err, smart.ErrInvalidClient, http.StatusUnauthorized)
			if !strings.Contains(oe.Description, tt.desc) {
				t.Fatalf("description %q, want %q", oe.Description, tt.desc)
			}
		})
	}
	// AuthenticateSecret (introspection callers) does not need grant basic.
	if _, err := f.srv.AuthenticateSecret(ctx, "cc-only", "cc-secret"); err != nil {
		t.Fatal(err)
	}
}

func TestBasicThrottle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register("basic", basicClient("secret"))
	// A correct secret verified before the attack stays usable from the cache.
	if _, err := f.srv.AuthenticateBasic(ctx, "basic", "secret"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		_, err := f.srv.AuthenticateBasic(ctx, "basic", "guess")
		oauthError(t, err, smart.ErrInvalidClient, 401)
	}
	runs := f.srv.hashRuns.Load()
	_, err := f.srv.AuthenticateBasic(ctx, "basic", "guess-11")
	oe := oauthError(t, err, smart.ErrSlowDown, http.StatusTooManyRequests)
	if oe.RetryAfter < 1 {
		t.Fatalf("RetryAfter = %d", oe.RetryAfter)
	}
	if f.srv.hashRuns.Load() != runs {
		t.Fatal("a throttled attempt still ran argon2id")
	}
	if _, err := f.srv.AuthenticateBasic(ctx, "basic", "secret"); err != nil {
		t.Fatalf("cached correct secret refused while throttled: %v", err)
	}
	// After the window refills one attempt is allowed again.
	f.clk.Add(6 * time.Second)
	_, err = f.srv.AuthenticateBasic(ctx, "basic", "guess-12")
	oauthError(t, err, smart.ErrInvalidClient, 401)
	_, err = f.srv.AuthenticateBasic(ctx, "basic", "guess-13")
	oauthError(t, err, smart.ErrSlowDown, 429)
	// Other clients are not affected.
	f.register("other", map[string]any{"secret": "o", "grant_types": []string{"basic"}})
	if _, err := f.srv.AuthenticateBasic(ctx, "other", "o"); err != nil {
		t.Fatal(err)
	}
}

func TestClientChangeInvalidates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kp := jwkstest.New(t, "ES384", "k")
	body := backendClient(inlineJWKS(t, kp))
	body["secret"], body["grant_types"] = "first", []string{"client_credentials", "basic"}
	f.register("c1", body)
	resp, err := f.srv.Token(ctx, tokenRequest(kp.Sign(t, nil, f.claims("c1")), "system/*.read"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.AuthenticateBasic(ctx, "c1", "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.AuthenticateBearer(ctx, resp.AccessToken); err != nil {
		t.Fatal(err)
	}

	// New secret: the cached old one stops at once.
	body["secret"] = "second"
	f.register("c1", body)
	if _, err := f.srv.AuthenticateBasic(ctx, "c1", "first"); err == nil {
		t.Fatal("old secret still accepted")
	}
	if _, err := f.srv.AuthenticateBasic(ctx, "c1", "second"); err != nil {
		t.Fatal(err)
	}

	// active=false: its token and its Basic credentials stop at once.
	body["active"], body["secret"] = false, "second"
	f.register("c1", body)
	_, err = f.srv.AuthenticateBearer(ctx, resp.AccessToken)
	oauthError(t, err, smart.ErrInvalidToken, http.StatusUnauthorized)
	_, err = f.srv.AuthenticateBasic(ctx, "c1", "second")
	oauthError(t, err, smart.ErrInvalidClient, http.StatusUnauthorized)
	if got := f.srv.Introspect(ctx, resp.AccessToken); got.Active {
		t.Fatal("introspection says active")
	}

	// Deleted: same.
	body["active"] = true
	f.register("c1", body)
	resp, _ = f.srv.Token(ctx, tokenRequest(kp.Sign(t, nil, f.claims("c1")), "system/*.read"))
	f.unregister("c1")
	_, err = f.srv.AuthenticateBearer(ctx, resp.AccessToken)
	oauthError(t, err, smart.ErrInvalidToken, http.StatusUnauthorized)
}

func TestClientCacheTTLAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register("c1", basicClient("secret"))
	if ok, _ := f.srv.ClientActive(ctx, "c1"); !ok {
		t.Fatal("not active")
	}
	// Another replica deactivates the client: this one sees it after the TTL
	// without being told.
	b, _ := json.Marshal(map[string]any{"grant_types": []string{"basic"}, "active": false})
	f.clients.mu.Lock()
	f.clients.docs["c1"] = b
	lookups := f.clients.lookups
	f.clients.mu.Unlock()
	if ok, _ := f.srv.ClientActive(ctx, "c1"); !ok {
		t.Fatal("cache not used within the TTL")
	}
	f.clk.Add(5 * time.Second)
	if ok, _ := f.srv.ClientActive(ctx, "c1"); ok {
		t.Fatal("still active after the TTL")
	}
	if f.clients.lookups != lookups+1 {
		t.Fatalf("%d store lookups, want 1", f.clients.lookups-lookups)
	}
}

func TestIntrospect(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kp := jwkstest.New(t, "ES384", "k")
	f.register("c1", backendClient(inlineJWKS(t, kp)))
	resp, err := f.srv.Token(ctx, tokenRequest(kp.Sign(t, nil, f.claims("c1")), "system/Patient.rs"))
	if err != nil {
		t.Fatal(err)
	}
	got := f.srv.Introspect(ctx, resp.AccessToken)
	now := f.clk.Now().Unix()
	if !got.Active || got.Scope != "system/Patient.rs" || got.ClientID != "c1" || got.Sub != "c1" ||
		got.Iss != baseURL || got.TokenType != "Bearer" || got.Iat != now || got.Exp != now+resp.ExpiresIn || got.JTI == "" {
		t.Fatalf("introspection = %+v", got)
	}
	for _, bad := range []string{"", "garbage", resp.AccessToken + "x"} {
		b, _ := json.Marshal(f.srv.Introspect(ctx, bad))
		if string(b) != `{"active":false}` {
			t.Fatalf("inactive token renders %s", b)
		}
	}
	f.clk.Add(time.Duration(resp.ExpiresIn) * time.Second)
	if f.srv.Introspect(ctx, resp.AccessToken).Active {
		t.Fatal("expired token active")
	}
}

func TestAuthenticateBearerRefusals(t *testing.T) {
	f := newFixture(t)
	for _, tok := range []string{"", "x.y.z", strings.Repeat("a", 9000)} {
		_, err := f.srv.AuthenticateBearer(context.Background(), tok)
		oauthError(t, err, smart.ErrInvalidToken, http.StatusUnauthorized)
	}
}

func TestDiscovery(t *testing.T) {
	c := Discovery("https://fhir.example.org/")
	b, _ := json.Marshal(c)
	var m map[string]any
	json.Unmarshal(b, &m)
	want := map[string]any{
		"token_endpoint":                        "https://fhir.example.org/auth/token",
		"introspection_endpoint":                "https://fhir.example.org/auth/introspect",
		"jwks_uri":                              "https://fhir.example.org/.well-known/jwks.json",
		"grant_types_supported":                 []any{"client_credentials"},
		"code_challenge_methods_supported":      []any{"S256"},
		"token_endpoint_auth_methods_supported": []any{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"capabilities":                          []any{"client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2"},
	}
	for k, v := range want {
		if got, _ := json.Marshal(m[k]); string(got) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, got, mustJSON(v))
		}
	}
	algs := strings.Join(c.TokenEndpointAuthSigningAlgValuesSupported, " ")
	if !strings.Contains(algs, "RS384") || !strings.Contains(algs, "ES384") || strings.Contains(algs, "HS") || strings.Contains(algs, "none") {
		t.Errorf("signing algs = %s", algs)
	}
	for _, s := range c.ScopesSupported {
		if _, err := smart.Grant(s, smart.Scopes{{Context: smart.ContextSystem, ResourceType: "*", Permissions: smart.PermAll}}); err != nil {
			t.Errorf("advertised scope %q is not grantable: %v", s, err)
		}
	}
	if _, ok := m["authorization_endpoint"]; ok {
		t.Error("authorization_endpoint advertised by a backend-only server")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
