// Package jwkstest provides client key pairs, signed client assertions and a
// JWKS server for tests: real keys, real signatures, a real HTTP server on
// loopback. It is imported by tests only.
package jwkstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// KeyPair is a client's signing key with its JWS algorithm and kid.
type KeyPair struct {
	KID     string
	Alg     string
	Private crypto.Signer
}

var (
	rsaMu    sync.Mutex
	rsaCache = map[int][]*rsa.PrivateKey{}
)

// RSAKey returns an RSA key of bits; the first few keys of each size are
// generated once per test binary and reused (distinct per index), since
// RSA generation is slow.
func RSAKey(t testing.TB, bits, index int) *rsa.PrivateKey {
	t.Helper()
	rsaMu.Lock()
	defer rsaMu.Unlock()
	for len(rsaCache[bits]) <= index {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		rsaCache[bits] = append(rsaCache[bits], k)
	}
	return rsaCache[bits][index]
}

var rsaIndex atomic.Int64

// New returns a fresh key pair for alg (RS*, PS*, ES256/384/512, EdDSA).
func New(t testing.TB, alg, kid string) *KeyPair {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		priv = RSAKey(t, 2048, int(rsaIndex.Add(1)-1)%8)
	case alg == "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case alg == "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case alg == "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case alg == "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("jwkstest: unsupported alg %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &KeyPair{KID: kid, Alg: alg, Private: priv}
}

// PublicJWK returns the public JWK as a JSON object with kid (and alg when
// withAlg).
func (k *KeyPair) PublicJWK(t testing.TB, withAlg bool) map[string]any {
	t.Helper()
	key, err := jwk.PublicKeyOf(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return toMap(t, key, k.KID, k.Alg, withAlg)
}

// PrivateJWK returns the private JWK (for tests that must refuse it).
func (k *KeyPair) PrivateJWK(t testing.TB) map[string]any {
	t.Helper()
	key, err := jwk.Import(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return toMap(t, key, k.KID, k.Alg, false)
}

func toMap(t testing.TB, key jwk.Key, kid, alg string, withAlg bool) map[string]any {
	b, err := json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["kid"] = kid
	if withAlg {
		m["alg"] = alg
	}
	return m
}

// JWKS returns {"keys":[...]} with the public keys of pairs.
func JWKS(t testing.TB, pairs ...*KeyPair) []byte {
	t.Helper()
	keys := make([]any, len(pairs))
	for i, p := range pairs {
		keys[i] = p.PublicJWK(t, false)
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign signs claims as a compact JWS with the pair's key and alg; header
// members are added to the protected header (alg is always the pair's;
// kid and typ default to the pair's kid and "JWT" unless header sets them,
// and a nil value removes them).
func (k *KeyPair) Sign(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	merged := map[string]any{"kid": k.KID, "typ": "JWT"}
	for name, v := range header {
		merged[name] = v
	}
	for name, v := range merged {
		if v == nil {
			continue
		}
		if err := hdr.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	alg, ok := jwa.LookupSignatureAlgorithm(k.Alg)
	if !ok {
		t.Fatalf("unknown alg %q", k.Alg)
	}
	out, err := jws.Sign(payload, jws.WithKey(alg, k.Private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Unsigned builds a compact JWS from raw header and claims with the given
// signature bytes, for tests of forged or malformed assertions.
func Unsigned(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// Server is a JWKS endpoint on loopback whose keys, headers and status can
// be changed while it runs, and which counts requests.
type Server struct {
	*httptest.Server
	Hits atomic.Int64

	mu      sync.Mutex
	body    []byte
	status  int
	headers http.Header
	accepts []string
}

// NewServer starts a JWKS server serving body; it is closed with t.Cleanup.
func NewServer(t testing.TB, body []byte) *Server {
	s := &Server{body: body, status: http.StatusOK, headers: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.Hits.Add(1)
	s.mu.Lock()
	body, status, headers := s.body, s.status, s.headers.Clone()
	s.accepts = append(s.accepts, r.Header.Get("Accept"))
	s.mu.Unlock()
	for k, v := range headers {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// URL returns the JWKS URL.
func (s *Server) URL() string { return s.Server.URL + "/.well-known/jwks.json" }

// SetBody replaces the served JWK Set (key rotation).
func (s *Server) SetBody(b []byte) { s.mu.Lock(); s.body = b; s.mu.Unlock() }

// SetStatus sets the HTTP status answered.
func (s *Server) SetStatus(code int) { s.mu.Lock(); s.status = code; s.mu.Unlock() }

// SetHeader sets a response header, e.g. Cache-Control.
func (s *Server) SetHeader(name, value string) {
	s.mu.Lock()
	s.headers.Set(name, value)
	s.mu.Unlock()
}

// Accepts returns the Accept headers received so far.
func (s *Server) Accepts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepts...)
}
