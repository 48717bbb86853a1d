package authserver

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/smart"
)

// tokenWorld is a fixture with the clients the token tests need.
type tokenWorld struct {
	*fixture
	k1, e1, dupA, dupB, i1, forger *jwkstest.KeyPair
	jwksSrv, brokenSrv             *jwkstest.Server
}

func newTokenWorld(t *testing.T, opts ...fixtureOption) *tokenWorld {
	w := &tokenWorld{fixture: newFixture(t, opts...)}
	w.k1 = jwkstest.New(t, "RS384", "k1")
	w.e1 = jwkstest.New(t, "ES384", "e1")
	w.dupA = jwkstest.New(t, "RS256", "dup")
	w.dupB = jwkstest.New(t, "RS256", "dup")
	w.i1 = jwkstest.New(t, "ES384", "i1")
	w.forger = jwkstest.New(t, "RS384", "k1")
	w.jwksSrv = jwkstest.NewServer(t, jwkstest.JWKS(t, w.k1, w.e1, w.dupA, w.dupB))
	w.brokenSrv = jwkstest.NewServer(t, nil)
	w.brokenSrv.SetStatus(http.StatusInternalServerError)

	w.register("uri-client", backendClient(map[string]any{"jwks_uri": w.jwksSrv.URL()}))
	w.register("inline-client", backendClient(inlineJWKS(t, w.i1), "system/Patient.rs", "system/Observation.rs"))
	inactive := backendClient(inlineJWKS(t, w.i1))
	inactive["active"] = false
	w.register("inactive", inactive)
	w.register("secret-only", map[string]any{"grant_types": []string{"client_credentials"}, "secret": "s3cret-value",
		"scope": []string{"system/*.read"}})
	basicOnly := inlineJWKS(t, w.i1)
	basicOnly["grant_types"], basicOnly["secret"] = []string{"basic"}, "basic-secret"
	w.register("basic-only", basicOnly)
	noTypes := backendClient(inlineJWKS(t, w.i1))
	noTypes["auth"] = map[string]any{"client_credentials": map[string]any{"client_assertion_types": []string{}}}
	w.register("no-assert-types", noTypes)
	w.register("broken-uri", backendClient(map[string]any{"jwks_uri": w.brokenSrv.URL()}))
	return w
}

func (w *tokenWorld) assertion(kp *jwkstest.KeyPair, client string, header map[string]any, edit func(map[string]any)) string {
	c := w.claims(client)
	if edit != nil {
		edit(c)
	}
	return kp.Sign(w.t, header, c)
}

func TestTokenSuccess(t *testing.T) {
	w := newTokenWorld(t)
	ctx := context.Background()
	tests := []struct {
		name, client string
		kp           *jwkstest.KeyPair
		scope, want  string
	}{
		{"RS384 via jwks_uri", "uri-client", nil, "system/*.read", "system/*.read"},
		{"ES384 via jwks_uri", "uri-client", nil, "system/Patient.read system/Observation.rs", "system/Patient.read system/Observation.rs"},
		{"inline jwks, cut down to the ceiling", "inline-client", nil, "system/*.cruds", "system/Patient.rs system/Observation.rs"},
		{"v1 answered in v1", "inline-client", nil, "system/Patient.read", "system/Patient.read"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp := map[string]*jwkstest.KeyPair{"uri-client": w.k1, "inline-client": w.i1}[tt.client]
			if i == 1 {
				kp = w.e1
			}
			resp, err := w.srv.Token(ctx, tokenRequest(w.assertion(kp, tt.client, nil, nil), tt.scope))
			if err != nil {
				t.Fatal(err)
			}
			if resp.TokenType != "Bearer" || resp.ExpiresIn != 300 || resp.Scope != tt.want || resp.AccessToken == "" {
				t.Fatalf("response = %+v", resp)
			}
			p, err := w.srv.AuthenticateBearer(ctx, resp.AccessToken)
			if err != nil || p.ClientID != tt.client || p.Scopes.String() != tt.want || p.Method != "bearer" {
				t.Fatalf("principal = %+v, %v", p, err)
			}
		})
	}
}

func TestTokenVariants(t *testing.T) {
	w := newTokenWorld(t)
	ctx := context.Background()
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			kp := jwkstest.New(t, alg, "v-"+alg)
			w.register("v-"+alg, backendClient(inlineJWKS(t, kp)))
			if _, err := w.srv.Token(ctx, tokenRequest(w.assertion(kp, "v-"+alg, nil, nil), "system/*.read")); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("aud array, jku equal to jwks_uri, client_id param, nbf and leeway", func(t *testing.T) {
		a := w.assertion(w.k1, "uri-client", map[string]any{"jku": w.jwksSrv.URL(), "typ": "jwt"}, func(c map[string]any) {
			c["aud"] = []string{"https://other.example", baseURL + "/auth/token"}
			c["nbf"] = w.clk.Now().Add(30 * time.Second).Unix()
			c["iat"] = w.clk.Now().Add(30 * time.Second).Unix()
			c["exp"] = w.clk.Now().Add(5*time.Minute + 30*time.Second).Unix()
		})
		req := tokenRequest(a, "system/*.read")
		req.ClientID = "uri-client"
		if _, err := w.srv.Token(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("lifetime capped by the server", func(t *testing.T) {
		c := backendClient(inlineJWKS(t, w.i1))
		c["auth"].(map[string]any)["client_credentials"].(map[string]any)["access_token_expiration"] = 3600
		w.register("long-lived", c)
		resp, err := w.srv.Token(ctx, tokenRequest(w.assertion(w.i1, "long-lived", nil, nil), "system/*.read"))
		if err != nil || resp.ExpiresIn != 300 {
			t.Fatalf("resp = %+v, %v", resp, err)
		}
	})
	t.Run("short lifetime honoured", func(t *testing.T) {
		c := backendClient(inlineJWKS(t, w.i1))
		c["auth"].(map[string]any)["client_credentials"].(map[string]any)["access_token_expiration"] = 60
		w.register("short-lived", c)
		resp, err := w.srv.Token(ctx, tokenRequest(w.assertion(w.i1, "short-lived", nil, nil), "system/*.read"))
		if err != nil || resp.ExpiresIn != 60 {
			t.Fatalf("resp = %+v, %v", resp, err)
		}
	})
}

// TestTokenRefusals has one row per refusal reason, each asserting the
// exact OAuth error and status.
func TestTokenRefusals(t *testing.T) {
	w := newTokenWorld(t)
	now := w.clk.Now()
	with := func(kv ...any) func(map[string]any) {
		return func(c map[string]any) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(c, kv[i].(string))
				} else {
					c[kv[i].(string)] = kv[i+1]
				}
			}
		}
	}
	valid := func(scope string) TokenRequest {
		return tokenRequest(w.assertion(w.k1, "uri-client", nil, nil), scope)
	}
	signed := func(kp *jwkstest.KeyPair, client string, header map[string]any, edit func(map[string]any)) TokenRequest {
		return tokenRequest(w.assertion(kp, client, header, edit), "system/*.read")
	}
	replayed := signed(w.k1, "uri-client", nil, nil)
	if _, err := w.srv.Token(context.Background(), replayed); err != nil {
		t.Fatal(err)
	}
	goodParts := strings.Split(replayed.ClientAssertion, ".")

	const (
		invalidClient = smart.ErrInvalidClient
		invalidReq    = smart.ErrInvalidRequest
		invalidScope  = smart.ErrInvalidScope
	)
	tests := []struct {
		name   string
		req    func() TokenRequest
		code   string
		status int
		desc   string
	}{
		// Request shape.
		{"grant_type missing", func() TokenRequest { r := valid("system/*.read"); r.GrantType = ""; return r }, invalidReq, 400, "grant_type is required"},
		{"grant_type unsupported", func() TokenRequest { r := valid("system/*.read"); r.GrantType = "authorization_code"; return r }, smart.ErrUnsupportedGrantType, 400, "not supported"},
		{"two authentication methods", func() TokenRequest {
			r := valid("system/*.read")
			r.HasBasic, r.BasicUser, r.BasicPassword = true, "uri-client", "x"
			return r
		}, invalidReq, 400, "exactly one"},
		{"assertion and client_secret", func() TokenRequest { r := valid("system/*.read"); r.ClientSecret = "x"; return r }, invalidReq, 400, "exactly one"},
		{"no client authentication", func() TokenRequest {
			return TokenRequest{GrantType: "client_credentials", Scope: "system/*.read"}
		}, invalidClient, 401, "no client authentication"},
		// Assertion envelope.
		{"wrong client_assertion_type", func() TokenRequest { r := valid("system/*.read"); r.ClientAssertionType = "urn:x"; return r }, invalidClient, 401, "client_assertion_type must be"},
		{"client_assertion missing", func() TokenRequest { r := valid("system/*.read"); r.ClientAssertion = ""; return r }, invalidClient, 401, "client_assertion is required"},
		{"client_assertion_type missing", func() TokenRequest { r := valid("system/*.read"); r.ClientAssertionType = ""; return r }, invalidClient, 401, "client_assertion_type must be"},
		{"assertion too large", func() TokenRequest {
			r := valid("system/*.read")
			r.ClientAssertion = strings.Repeat("a", MaxAssertionBytes+1)
			return r
		}, invalidClient, 401, "larger than"},
		{"not compact JWS", func() TokenRequest { r := valid("system/*.read"); r.ClientAssertion = "abc.def"; return r }, invalidClient, 401, "compact form"},
		{"empty signature", func() TokenRequest {
			r := valid("system/*.read")
			r.ClientAssertion = goodParts[0] + "." + goodParts[1] + "."
			return r
		}, invalidClient, 401, "compact form"},
		{"header not base64", func() TokenRequest {
			r := valid("system/*.read")
			r.ClientAssertion = "%%%." + goodParts[1] + "." + goodParts[2]
			return r
		}, invalidClient, 401, "header is not base64url"},
		{"payload not JSON", func() TokenRequest {
			r := valid("system/*.read")
			r.ClientAssertion = goodParts[0] + ".bm90anNvbg." + goodParts[2]
			return r
		}, invalidClient, 401, "payload is not"},
		{"exp not a number", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("exp", "soon")) }, invalidClient, 401, "NumericDate"},
		{"aud not a string", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("aud", 7)) }, invalidClient, 401, "claim aud"},
		// Header.
		{"alg none", func() TokenRequest {
			return tokenRequest(jwkstest.Unsigned(t, map[string]any{"alg": "none", "kid": "k1", "typ": "JWT"}, w.claims("uri-client"), []byte("x")), "system/*.read")
		}, invalidClient, 401, `alg "none" is not accepted`},
		{"alg HS256", func() TokenRequest {
			return tokenRequest(jwkstest.Unsigned(t, map[string]any{"alg": "HS256", "kid": "k1", "typ": "JWT"}, w.claims("uri-client"), []byte("mac")), "system/*.read")
		}, invalidClient, 401, `alg "HS256" is not accepted`},
		{"alg missing", func() TokenRequest {
			return tokenRequest(jwkstest.Unsigned(t, map[string]any{"kid": "k1", "typ": "JWT"}, w.claims("uri-client"), []byte("x")), "system/*.read")
		}, invalidClient, 401, `alg "" is not accepted`},
		{"kid missing", func() TokenRequest { return signed(w.k1, "uri-client", map[string]any{"kid": nil}, nil) }, invalidClient, 401, "needs kid"},
		{"typ missing", func() TokenRequest { return signed(w.k1, "uri-client", map[string]any{"typ": nil}, nil) }, invalidClient, 401, `typ "JWT"`},
		{"typ at+jwt", func() TokenRequest { return signed(w.k1, "uri-client", map[string]any{"typ": "at+jwt"}, nil) }, invalidClient, 401, `typ "JWT"`},
		{"crit header", func() TokenRequest {
			return signed(w.k1, "uri-client", map[string]any{"crit": []string{"exp"}}, nil)
		}, invalidClient, 401, "crit"},
		// Claims.
		{"iss missing", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("iss", nil)) }, invalidClient, 401, "iss and sub"},
		{"sub differs from iss", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("sub", "other")) }, invalidClient, 401, "iss and sub"},
		{"client_id parameter differs", func() TokenRequest {
			r := valid("system/*.read")
			r.ClientID = "inline-client"
			return r
		}, invalidClient, 401, "client_id parameter differs"},
		{"aud wrong", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("aud", "https://fhirgate.example.org/fhir"))
		}, invalidClient, 401, "aud must be the token endpoint URL https://fhirgate.example.org/auth/token"},
		{"aud missing", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("aud", nil)) }, invalidClient, 401, "aud must be"},
		{"aud array without the token URL", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("aud", []string{"https://a.example", "https://b.example"}))
		}, invalidClient, 401, "aud must be"},
		{"exp missing", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("exp", nil)) }, invalidClient, 401, "exp is required"},
		{"exp passed beyond leeway", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("exp", now.Add(-61*time.Second).Unix()))
		}, invalidClient, 401, "expired at"},
		{"exp more than 5 minutes ahead", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("exp", now.Add(6*time.Minute+1*time.Second).Unix()))
		}, invalidClient, 401, "five minutes"},
		{"nbf in the future", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("nbf", now.Add(2*time.Minute).Unix()))
		}, invalidClient, 401, "not valid before"},
		{"iat in the future", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("iat", now.Add(2*time.Minute).Unix()))
		}, invalidClient, 401, "iat is in the future"},
		{"jti missing", func() TokenRequest { return signed(w.k1, "uri-client", nil, with("jti", nil)) }, invalidClient, 401, "jti is required"},
		{"jti too long", func() TokenRequest {
			return signed(w.k1, "uri-client", nil, with("jti", strings.Repeat("j", 257)))
		}, invalidClient, 401, "longer than 256"},
		// Client.
		{"unknown client", func() TokenRequest { return signed(w.k1, "nobody", nil, nil) }, invalidClient, 401, `client "nobody" is not registered`},
		{"inactive client", func() TokenRequest { return signed(w.i1, "inactive", nil, nil) }, invalidClient, 401, "not active"},
		{"client without keys", func() TokenRequest { return signed(w.k1, "secret-only", nil, nil) }, invalidClient, 401, "not registered for private_key_jwt"},
		{"client without the JWT bearer assertion type", func() TokenRequest {
			return signed(w.i1, "no-assert-types", nil, nil)
		}, invalidClient, 401, "not registered for private_key_jwt"},
		{"client without client_credentials", func() TokenRequest { return signed(w.i1, "basic-only", nil, nil) }, smart.ErrUnauthorizedClient, 400, "client_credentials"},
		// Keys.
		{"jku not the registered jwks_uri", func() TokenRequest {
			return signed(w.k1, "uri-client", map[string]any{"jku": "https://attacker.example/jwks.json"}, nil)
		}, invalidClient, 401, "jku does not match"},
		{"jku with inline jwks", func() TokenRequest {
			return signed(w.i1, "inline-client", map[string]any{"jku": w.jwksSrv.URL()}, nil)
		}, invalidClient, 401, "jku does not match"},
		{"unknown kid", func() TokenRequest { return signed(w.k1, "uri-client", map[string]any{"kid": "nope"}, nil) }, invalidClient, 401, `no key in the client's JWK Set has kid "nope"`},
		{"kid of a key that does not fit alg", func() TokenRequest {
			return signed(w.k1, "uri-client", map[string]any{"kid": "e1"}, nil)
		}, invalidClient, 401, `kid "e1" and a type fitting RS384`},
		{"ambiguous kid", func() TokenRequest { return signed(w.dupA, "uri-client", nil, nil) }, invalidClient, 401, "more than one key"},
		{"JWKS fetch fails", func() TokenRequest { return signed(w.k1, "broken-uri", nil, nil) }, invalidClient, 401, "could not be obtained"},
		{"signed by another key with the registered kid", func() TokenRequest { return signed(w.forger, "uri-client", nil, nil) }, invalidClient, 401, "signature does not verify"},
		{"signature tampered", func() TokenRequest {
			r := valid("system/*.read")
			p := strings.Split(r.ClientAssertion, ".")
			r.ClientAssertion = p[0] + "." + p[1] + "." + goodParts[2]
			return r
		}, invalidClient, 401, "signature does not verify"},
		{"claims tampered after signing", func() TokenRequest {
			r := valid("system/*.read")
			other := strings.Split(w.assertion(w.k1, "uri-client", nil, nil), ".")
			p := strings.Split(r.ClientAssertion, ".")
			r.ClientAssertion = p[0] + "." + other[1] + "." + p[2]
			return r
		}, invalidClient, 401, "signature does not verify"},
		{"PS384 header over an RS384 signature", func() TokenRequest {
			ps := &jwkstest.KeyPair{KID: "k1", Alg: "PS384", Private: w.k1.Private}
			r := signed(ps, "uri-client", nil, nil)
			p := strings.Split(r.ClientAssertion, ".")
			rs := strings.Split(w.assertion(w.k1, "uri-client", nil, nil), ".")
			r.ClientAssertion = p[0] + "." + rs[1] + "." + rs[2]
			return r
		}, invalidClient, 401, "signature does not verify"},
		{"replayed jti", func() TokenRequest { return replayed }, invalidClient, 401, "already used"},
		// Scope.
		{"scope empty", func() TokenRequest { return valid("") }, invalidScope, 400, "required"},
		{"scope malformed", func() TokenRequest { return valid("system/Patient") }, invalidScope, 400, "system/Patient"},
		{"scope unknown type", func() TokenRequest { return valid("system/Patients.read") }, invalidScope, 400, "not a FHIR R4 resource type"},
		{"scope unknown permission", func() TokenRequest { return valid("system/Patient.x") }, invalidScope, 400, "permissions must be"},
		{"user scope", func() TokenRequest { return valid("user/Patient.read") }, invalidScope, 400, "only system/"},
		{"patient scope", func() TokenRequest { return valid("patient/*.read") }, invalidScope, 400, "only system/"},
		{"launch scope", func() TokenRequest { return valid("system/*.read launch") }, invalidScope, 400, "launch"},
		{"scope beyond the ceiling", func() TokenRequest { return valid("system/*.write") }, invalidScope, 400, "none of the requested scopes"},
		// Secrets at the token endpoint.
		{"Basic with a wrong secret", func() TokenRequest {
			return TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", HasBasic: true, BasicUser: "secret-only", BasicPassword: "wrong"}
		}, invalidClient, 401, "authentication failed"},
		{"Basic for an unknown client", func() TokenRequest {
			return TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", HasBasic: true, BasicUser: "nobody", BasicPassword: "x"}
		}, invalidClient, 401, "authentication failed"},
		{"client_secret without client_id", func() TokenRequest {
			return TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", ClientSecret: "s3cret-value"}
		}, invalidClient, 401, "client_id is required"},
		{"secret of a client without client_credentials", func() TokenRequest {
			return TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", HasBasic: true, BasicUser: "basic-only", BasicPassword: "basic-secret"}
		}, smart.ErrUnauthorizedClient, 400, "client_credentials"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("duplicate row %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			resp, err := w.srv.Token(context.Background(), tt.req())
			if resp != nil {
				t.Fatalf("token issued: %+v", resp)
			}
			oe := oauthError(t, err, tt.code, tt.status)
			if !strings.Contains(oe.Description, tt.desc) {
				t.Fatalf("description %q does not mention %q", oe.Description, tt.desc)
			}
		})
	}
}

func TestTokenRateLimits(t *testing.T) {
	limits := NewTokenLimiter(TokenLimiterConfig{PerClient: 1, ClientBurst: 2, PerAddress: 1, AddressBurst: 3})
	w := newTokenWorld(t, func(c *Config) { c.Limits = limits })
	ctx := context.Background()
	req := func(addr string) TokenRequest {
		r := tokenRequest(w.assertion(w.i1, "inline-client", nil, nil), "system/Patient.rs")
		r.RemoteAddr = addr
		return r
	}
	for i := 0; i < 2; i++ {
		if _, err := w.srv.Token(ctx, req("192.0.2.1")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := w.srv.Token(ctx, req("192.0.2.2"))
	oe := oauthError(t, err, smart.ErrSlowDown, http.StatusTooManyRequests)
	if oe.RetryAfter < 1 || !strings.Contains(oe.Description, "inline-client") {
		t.Fatalf("per-client limit: %+v", oe)
	}
	// Per address: the 4th request from one address is refused before any
	// work, whoever it claims to be.
	w.srv.Token(ctx, req("192.0.2.1"))
	_, err = w.srv.Token(ctx, req("192.0.2.1"))
	oe = oauthError(t, err, smart.ErrSlowDown, http.StatusTooManyRequests)
	if !strings.Contains(oe.Description, "address") {
		t.Fatalf("per-address limit: %+v", oe)
	}
	w.clk.Add(5 * time.Second)
	if _, err := w.srv.Token(ctx, req("192.0.2.1")); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":              "192.0.2.7",
		"192.0.2.7:443":          "192.0.2.7",
		"::ffff:192.0.2.7":       "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":   "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:8080": "2001:db8:1:2::/64",
		"not-an-ip":              "not-an-ip",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParallelReplay sends one assertion 20 times at once: exactly one
// token comes back (SMART-ASYM: a jti SHALL NOT be accepted twice).
func TestParallelReplay(t *testing.T) {
	w := newTokenWorld(t)
	a := w.assertion(w.k1, "uri-client", nil, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	issued, refused := 0, 0
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := w.srv.Token(context.Background(), tokenRequest(a, "system/*.read"))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				issued++
				return
			}
			if oe, ok := err.(*smart.Error); ok && oe.Code == smart.ErrInvalidClient && strings.Contains(oe.Description, "already used") {
				refused++
			}
		}()
	}
	close(start)
	wg.Wait()
	if issued != 1 || refused != 19 {
		t.Fatalf("issued %d, refused as replay %d; want 1 and 19", issued, refused)
	}
}

// TestJWKSRotationEndToEnd: a client behind a real loopback JWKS server
// rotates its key; the new kid is picked up at once, the old one keeps
// working only as long as the cached set may be used.
func TestJWKSRotationEndToEnd(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := jwkstest.New(t, "RS384", "2026-01")
	next := jwkstest.New(t, "RS384", "2026-03")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, old))
	srv.SetHeader("Cache-Control", "max-age=300")
	f.register("rotating", backendClient(map[string]any{"jwks_uri": srv.URL()}))
	token := func(kp *jwkstest.KeyPair) error {
		_, err := f.srv.Token(ctx, tokenRequest(kp.Sign(t, nil, f.claims("rotating")), "system/*.read"))
		return err
	}
	if err := token(old); err != nil {
		t.Fatal(err)
	}
	srv.SetBody(jwkstest.JWKS(t, next))
	if err := token(next); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if err := token(old); err == nil {
		t.Fatal("old kid still accepted after the refetched set dropped it")
	}
	if n := srv.Hits.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	f.clk.Add(301 * time.Second)
	if err := token(next); err != nil {
		t.Fatal(err)
	}
	if n := srv.Hits.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches after max-age, want 3", n)
	}
}

func TestSecretAuthAtTokenEndpoint(t *testing.T) {
	w := newTokenWorld(t)
	ctx := context.Background()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}
	req, err := ParseTokenForm(form, "secret-only", url.QueryEscape("s3cret-value"), true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.srv.Token(ctx, req)
	if err != nil || resp.Scope != "system/Patient.rs" {
		t.Fatalf("client_secret_basic: %+v %v", resp, err)
	}
	form.Set("client_id", "secret-only")
	form.Set("client_secret", "s3cret-value")
	req, _ = ParseTokenForm(form, "", "", false)
	if resp, err := w.srv.Token(ctx, req); err != nil || resp.AccessToken == "" {
		t.Fatalf("client_secret_post: %+v %v", resp, err)
	}
}

// TestTokenClientRateSpentOnlyByVerifiedAssertions sends forged
// assertions naming a client (bad signature, a stranger's key with the
// client's kid, a replay of a genuine one) well past the client's burst:
// none may spend its budget, so its genuine requests still get tokens,
// and only genuine requests bring it to slow_down.
func TestTokenClientRateSpentOnlyByVerifiedAssertions(t *testing.T) {
	limits := NewTokenLimiter(TokenLimiterConfig{PerClient: 1, ClientBurst: 2, PerAddress: 1000, AddressBurst: 1000})
	w := newTokenWorld(t, func(c *Config) { c.Limits = limits })
	ctx := context.Background()
	stranger := jwkstest.New(t, "ES384", "i1")
	genuine := func() TokenRequest {
		r := tokenRequest(w.assertion(w.i1, "inline-client", nil, nil), "system/Patient.rs")
		r.RemoteAddr = "192.0.2.1"
		return r
	}
	first := genuine()
	if _, err := w.srv.Token(ctx, first); err != nil {
		t.Fatalf("first genuine request: %v", err)
	}
	forgeries := []struct {
		name, desc string
		req        func() TokenRequest
	}{
		{"garbage signature", "signature does not verify", func() TokenRequest {
			r := genuine()
			parts := strings.Split(r.ClientAssertion, ".")
			r.ClientAssertion = parts[0] + "." + parts[1] + ".AAAA"
			return r
		}},
		{"stranger's key with the client's kid", "signature does not verify", func() TokenRequest {
			r := tokenRequest(w.assertion(stranger, "inline-client", nil, nil), "system/Patient.rs")
			r.RemoteAddr = "198.51.100.9"
			return r
		}},
		{"replay of a genuine assertion", "already used", func() TokenRequest { return first }},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			for i := 0; i < 5; i++ {
				_, err := w.srv.Token(ctx, f.req())
				oe := oauthError(t, err, smart.ErrInvalidClient, http.StatusUnauthorized)
				if !strings.Contains(oe.Description, f.desc) {
					t.Fatalf("forgery %d: %q does not mention %q", i, oe.Description, f.desc)
				}
			}
		})
	}
	// The burst is 2 and the clock stands still: the first genuine request
	// spent one, so exactly one more genuine request fits.
	if _, err := w.srv.Token(ctx, genuine()); err != nil {
		t.Fatalf("genuine request after 15 forgeries: %v", err)
	}
	_, err := w.srv.Token(ctx, genuine())
	oauthError(t, err, smart.ErrSlowDown, http.StatusTooManyRequests)
}

// TestReRegisteredClientTokensStayDead: deleting a client revokes its
// tokens for good; registering the id again must not bring an old token
// back, while replacing a live client keeps its tokens.
func TestReRegisteredClientTokensStayDead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kp := jwkstest.New(t, "ES384", "k")
	body := backendClient(inlineJWKS(t, kp))
	f.register("c1", body)
	issue := func() string {
		t.Helper()
		resp, err := f.srv.Token(ctx, tokenRequest(kp.Sign(t, nil, f.claims("c1")), "system/*.read"))
		if err != nil {
			t.Fatal(err)
		}
		return resp.AccessToken
	}
	old := issue()
	if _, err := f.srv.AuthenticateBearer(ctx, old); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	f.register("c1", body) // a replacement is the same registration
	if _, err := f.srv.AuthenticateBearer(ctx, old); err != nil {
		t.Fatalf("token after the client was replaced: %v", err)
	}
	f.unregister("c1")
	_, err := f.srv.AuthenticateBearer(ctx, old)
	oauthError(t, err, smart.ErrInvalidToken, http.StatusUnauthorized)
	f.register("c1", body)
	_, err = f.srv.AuthenticateBearer(ctx, old)
	oe := oauthError(t, err, smart.ErrInvalidToken, http.StatusUnauthorized)
	if !strings.Contains(oe.Description, "registered again") {
		t.Fatalf("description %q", oe.Description)
	}
	if in := f.srv.Introspect(ctx, old); in.Active {
		t.Fatalf("introspection of the old token: %+v", in)
	}
	if _, err := f.srv.AuthenticateBearer(ctx, issue()); err != nil {
		t.Fatalf("token of the new registration: %v", err)
	}
}

// TestTokensWithoutRegistrationStore: a ClientStore that cannot tell
// registrations still issues tokens that verify.
func TestTokensWithoutRegistrationStore(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Clients = plainClients{c.Clients.(*memClients)} })
	kp := jwkstest.New(t, "ES384", "k")
	f.register("c1", backendClient(inlineJWKS(t, kp)))
	ctx := context.Background()
	resp, err := f.srv.Token(ctx, tokenRequest(kp.Sign(t, nil, f.claims("c1")), "system/*.read"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.AuthenticateBearer(ctx, resp.AccessToken); err != nil {
		t.Fatal(err)
	}
}
