package client

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAssertionClaimsAndHeader(t *testing.T) {
	k, err := GenerateKey(ES384, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := Assertion{Key: k.WithKID("k1"), ClientID: "client-7", TokenURL: "https://as.example/auth/token"}
	jwt, err := a.Sign(now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var h map[string]any
	var c AssertionClaims
	decodeJSON(t, parts[0], &h)
	decodeJSON(t, parts[1], &c)
	if h["alg"] != "ES384" || h["kid"] != "k1" || h["typ"] != "JWT" || h["jku"] != nil {
		t.Errorf("header = %v", h)
	}
	if c.Issuer != "client-7" || c.Subject != "client-7" || c.Audience != a.TokenURL {
		t.Errorf("claims = %+v", c)
	}
	if c.ExpiresAt-now.Unix() != int64(DefaultAssertionLifetime/time.Second) || c.IssuedAt != now.Unix() {
		t.Errorf("exp %d iat %d, now %d", c.ExpiresAt, c.IssuedAt, now.Unix())
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if len(sig) != 96 {
		t.Errorf("ES384 signature is %d bytes, want 96 (R||S)", len(sig))
	}
}

func TestAssertionJTIUnique(t *testing.T) {
	k, _ := GenerateKey(ES256, 0)
	a := Assertion{Key: k, ClientID: "c", TokenURL: "https://as/token"}
	seen := map[string]bool{}
	for range 1000 {
		jwt, err := a.Sign(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var c AssertionClaims
		decodeJSON(t, strings.Split(jwt, ".")[1], &c)
		if seen[c.JWTID] || len(c.JWTID) < 20 {
			t.Fatalf("jti %q repeated or short", c.JWTID)
		}
		seen[c.JWTID] = true
	}
}

func TestAssertionRefusals(t *testing.T) {
	k, _ := GenerateKey(ES256, 0)
	tests := []struct {
		name string
		a    Assertion
		want string
	}{
		{"no key", Assertion{ClientID: "c", TokenURL: "u"}, "needs a key"},
		{"no client", Assertion{Key: k, TokenURL: "u"}, "needs a client id"},
		{"no aud", Assertion{Key: k, ClientID: "c"}, "needs the token endpoint URL"},
		{"too long", Assertion{Key: k, ClientID: "c", TokenURL: "u", Lifetime: 301 * time.Second}, "lifetime 5m1s is outside (0, 5m0s]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.a.Sign(time.Now()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func decodeJSON(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
