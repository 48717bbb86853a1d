package jwks

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
)

func marshal(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestParseKeyValid(t *testing.T) {
	for _, alg := range []string{"RS384", "PS256", "ES256", "ES384", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			kp := jwkstest.New(t, alg, "k-"+alg)
			k, err := ParseKey(marshal(t, kp.PublicJWK(t, true)))
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if k.KID != "k-"+alg || k.Alg != alg || !k.Fits(alg) || k.Public == nil {
				t.Fatalf("key = %+v", k)
			}
		})
	}
}

func TestParseKeyRefusals(t *testing.T) {
	rsa := jwkstest.New(t, "RS384", "r1")
	ec := jwkstest.New(t, "ES384", "e1")
	okp := jwkstest.New(t, "EdDSA", "o1")
	smallKey := jwkstest.RSAKey(t, 1024, 0)
	small := map[string]any{"kty": "RSA", "kid": "s",
		"n": base64.RawURLEncoding.EncodeToString(smallKey.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(smallKey.E)).Bytes())}
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	xk, _ := jwk.Import(x.PublicKey())
	xb, _ := json.Marshal(xk)
	var x25519 map[string]any
	json.Unmarshal(xb, &x25519)
	x25519["kid"] = "x"

	pub := rsa.PublicJWK(t, false)
	tests := []struct {
		name    string
		jwk     map[string]any
		member  string
		private bool
	}{
		{"private RSA", rsa.PrivateJWK(t), "d", true},
		{"private EC", ec.PrivateJWK(t), "d", true},
		{"private OKP", okp.PrivateJWK(t), "d", true},
		{"symmetric", map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, "k", true},
		{"no kty", with(pub, "kty", nil), "kty", false},
		{"no kid", with(pub, "kid", nil), "kid", false},
		{"empty kid", with(pub, "kid", ""), "kid", false},
		{"oct without k", map[string]any{"kty": "oct", "kid": "h"}, "kty", false},
		{"unknown kty", with(pub, "kty", "XYZ"), "kty", false},
		{"RSA too small", small, "n", false},
		{"RSA without n", with(pub, "n", nil), "n", false},
		{"EC without y", with(ec.PublicJWK(t, false), "y", nil), "x", false},
		{"EC wrong curve name", with(ec.PublicJWK(t, false), "crv", "P-256"), "x", false},
		{"OKP X25519", x25519, "crv", false},
		{"use enc", with(pub, "use", "enc"), "use", false},
		{"key_ops without verify", with(pub, "key_ops", []string{"encrypt"}), "key_ops", false},
		{"alg HS256", with(pub, "alg", "HS256"), "alg", false},
		{"alg none", with(pub, "alg", "none"), "alg", false},
		{"alg not fitting", with(pub, "alg", "ES256"), "alg", false},
		{"EC alg not fitting curve", with(ec.PublicJWK(t, false), "alg", "ES256"), "alg", false},
		{"kid not a string", with(pub, "kid", 7), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey(marshal(t, tt.jwk))
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError", err)
			}
			if ke.Member != tt.member {
				t.Fatalf("member = %q, want %q (%v)", ke.Member, tt.member, err)
			}
			if errors.Is(err, ErrPrivateKey) != tt.private {
				t.Fatalf("ErrPrivateKey = %v, want %v", errors.Is(err, ErrPrivateKey), tt.private)
			}
		})
	}
	if _, err := ParseKey([]byte(`[1]`)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("non-object: %v", err)
	}
}

func TestFits(t *testing.T) {
	tests := []struct {
		key  Key
		alg  string
		want bool
	}{
		{Key{Kty: "RSA"}, "RS384", true},
		{Key{Kty: "RSA"}, "PS512", true},
		{Key{Kty: "RSA"}, "ES384", false},
		{Key{Kty: "RSA", Alg: "RS256"}, "RS384", false},
		{Key{Kty: "EC", Crv: "P-384"}, "ES384", true},
		{Key{Kty: "EC", Crv: "P-256"}, "ES384", false},
		{Key{Kty: "EC", Crv: "P-521"}, "ES512", true},
		{Key{Kty: "OKP", Crv: "Ed25519"}, "EdDSA", true},
		{Key{Kty: "OKP", Crv: "Ed25519"}, "ES256", false},
		{Key{Kty: "RSA"}, "HS256", false},
		{Key{Kty: "RSA"}, "none", false},
	}
	for _, tt := range tests {
		if got := tt.key.Fits(tt.alg); got != tt.want {
			t.Errorf("%+v fits %s = %v, want %v", tt.key, tt.alg, got, tt.want)
		}
	}
}

func TestRegisteredSet(t *testing.T) {
	a := jwkstest.New(t, "RS384", "a")
	b := jwkstest.New(t, "ES384", "b")
	if s, err := ParseRegisteredSet(jwkstest.JWKS(t, a, b)); err != nil || len(s.Keys) != 2 {
		t.Fatalf("valid set: %v %v", s, err)
	}
	dup := &jwkstest.KeyPair{KID: "a", Alg: b.Alg, Private: b.Private}
	tests := []struct {
		name   string
		doc    []byte
		index  int
		member string
	}{
		{"not an object", []byte(`[]`), -1, ""},
		{"no keys", []byte(`{}`), -1, ""},
		{"empty keys", []byte(`{"keys":[]}`), -1, ""},
		{"duplicate kid", jwkstest.JWKS(t, a, dup), 1, "kid"},
		{"private key", marshal(t, map[string]any{"keys": []any{a.PublicJWK(t, false), b.PrivateJWK(t)}}), 1, "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRegisteredSet(tt.doc)
			var se *SetError
			if !errors.As(err, &se) || se.Index != tt.index || se.Member() != tt.member {
				t.Fatalf("error = %v (%+v), want index %d member %q", err, se, tt.index, tt.member)
			}
		})
	}
}

func TestFetchedSetSkipsUnusableKeys(t *testing.T) {
	a := jwkstest.New(t, "RS384", "a")
	enc := with(jwkstest.New(t, "ES256", "e").PublicJWK(t, false), "use", "enc")
	doc := marshal(t, map[string]any{"keys": []any{a.PublicJWK(t, false), enc, map[string]any{"kty": "oct", "kid": "h", "k": "eA"}}})
	s, err := ParseFetchedSet(doc)
	if err != nil || len(s.Keys) != 1 || s.Skipped != 2 {
		t.Fatalf("set = %+v, err %v", s, err)
	}
}

func TestSelect(t *testing.T) {
	s := &Set{Keys: []Key{
		{KID: "a", Kty: "RSA"},
		{KID: "b", Kty: "EC", Crv: "P-384"},
		{KID: "c", Kty: "RSA"}, {KID: "c", Kty: "RSA"},
		{KID: "d", Kty: "RSA"}, {KID: "d", Kty: "EC", Crv: "P-384"},
	}}
	tests := []struct {
		kid, alg string
		err      error
	}{
		{"a", "RS384", nil},
		{"a", "ES384", ErrNoKey},
		{"b", "ES384", nil},
		{"zz", "RS384", ErrNoKey},
		{"c", "RS256", ErrAmbiguousKey},
		{"d", "ES384", nil},
		{"d", "RS384", nil},
	}
	for _, tt := range tests {
		k, err := s.Select(tt.kid, tt.alg)
		if !errors.Is(err, tt.err) || (err == nil && k.KID != tt.kid) {
			t.Errorf("Select(%s,%s) = %+v, %v; want %v", tt.kid, tt.alg, k, err, tt.err)
		}
	}
}
