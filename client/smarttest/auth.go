package smarttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/smart"
)

// skew is the clock leeway for exp and nbf.
const skew = 30 * time.Second

// tokenEndpoint implements the SMART Backend Services token request
// (backend-services.html#request-access-token).
func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.tokenRequests++
	b := &s.b
	delay := b.TokenDelay
	var fail *smart.Error
	if b.TokenFailures > 0 {
		b.TokenFailures--
		status := cmp(b.TokenFailureStatus, http.StatusServiceUnavailable)
		fail = &smart.Error{Code: smart.ErrTemporarilyUnavailable, Description: "injected failure", Status: status, RetryAfter: b.TokenRetryAfter}
	}
	s.mu.Unlock()
	time.Sleep(delay)
	resp, err := s.issue(r)
	if err != nil {
		var oe *smart.Error
		if !errors.As(err, &oe) {
			oe = smart.InvalidClient("%v", err)
		}
		writeOAuthError(w, oe)
		return
	}
	// Injected failures come after the assertion was verified and its jti
	// recorded, so that a client retrying with the same assertion is
	// caught as a replay.
	if fail != nil {
		writeOAuthError(w, fail)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func cmp(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

func writeOAuthError(w http.ResponseWriter, e *smart.Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(e.JSON())
}

// issue checks the request and issues a token.
func (s *Server) issue(r *http.Request) (*smart.TokenResponse, error) {
	if r.Method != http.MethodPost {
		return nil, smart.InvalidRequest("the token endpoint takes POST")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, smart.InvalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return nil, smart.InvalidRequest("bad form: %v", err)
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, smart.InvalidRequest("parameter %s is repeated", k)
		}
	}
	f := r.PostForm
	if f.Get("grant_type") != smart.GrantClientCredentials {
		return nil, smart.UnsupportedGrantType("grant_type must be client_credentials")
	}
	if f.Get("client_assertion_type") != smart.AssertionTypeJWTBearer {
		return nil, smart.InvalidClient("client_assertion_type must be %s", smart.AssertionTypeJWTBearer)
	}
	if f.Get("client_assertion") == "" {
		return nil, smart.InvalidClient("client_assertion is missing")
	}
	c, err := s.verifyAssertion(f.Get("client_assertion"), f.Get("client_id"))
	if err != nil {
		return nil, smart.InvalidClient("%v", err)
	}
	granted := grant(c.Scopes, strings.Fields(f.Get("scope")))
	if len(granted) == 0 {
		return nil, smart.InvalidScope("none of the requested scopes %q is registered for the client", f.Get("scope"))
	}
	raw := randomID()
	s.mu.Lock()
	s.tokens[raw] = &token{clientID: c.ID, scopes: granted, expiry: s.now().Add(s.lifetime)}
	s.mu.Unlock()
	return &smart.TokenResponse{AccessToken: raw, TokenType: smart.TokenTypeBearer,
		ExpiresIn: int64(s.lifetime / time.Second), Scope: strings.Join(granted, " ")}, nil
}

func grant(allowed, requested []string) []string {
	var out []string
	for _, r := range requested {
		if slices.Contains(allowed, r) {
			out = append(out, r)
		}
	}
	return out
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	Jku string `json:"jku"`
}

type claims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
	Jti string          `json:"jti"`
}

// verifyAssertion follows client-confidential-asymmetric.html#signature-verification:
// header, client, key resolution, signature, then claims and jti replay.
func (s *Server) verifyAssertion(jwt, formClientID string) (Client, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return Client{}, errors.New("the assertion is not a compact JWS")
	}
	var h header
	var cl claims
	if err := decodePart(parts[0], &h); err != nil {
		return Client{}, fmt.Errorf("header: %w", err)
	}
	if err := decodePart(parts[1], &cl); err != nil {
		return Client{}, fmt.Errorf("claims: %w", err)
	}
	if h.Typ != "JWT" {
		return Client{}, fmt.Errorf("typ is %q, not JWT", h.Typ)
	}
	if h.Kid == "" {
		return Client{}, errors.New("kid is missing")
	}
	if cl.Iss == "" || cl.Iss != cl.Sub {
		return Client{}, errors.New("iss and sub must both be the client id")
	}
	if formClientID != "" && formClientID != cl.Iss {
		return Client{}, errors.New("client_id does not match iss")
	}
	s.mu.Lock()
	c, ok := s.clients[cl.Iss]
	s.mu.Unlock()
	if !ok {
		return Client{}, fmt.Errorf("unknown client %q", cl.Iss)
	}
	keys, err := s.clientKeys(c, h.Jku)
	if err != nil {
		return Client{}, err
	}
	pub, err := selectKey(keys, h.Kid, h.Alg)
	if err != nil {
		return Client{}, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Client{}, errors.New("signature is not base64url")
	}
	if err := verify(h.Alg, pub, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		return Client{}, err
	}
	return c, s.checkClaims(cl)
}

func (s *Server) checkClaims(cl claims) error {
	var aud string
	if json.Unmarshal(cl.Aud, &aud) != nil || aud != s.TokenURL() {
		return fmt.Errorf("aud %s is not the token endpoint %s", cl.Aud, s.TokenURL())
	}
	now := s.now()
	if cl.Exp == nil {
		return errors.New("exp is missing")
	}
	exp := time.Unix(int64(*cl.Exp), 0)
	if !now.Add(-skew).Before(exp) {
		return errors.New("the assertion has expired")
	}
	if exp.After(now.Add(smart.AssertionMaxLifetimeSeconds*time.Second + skew)) {
		return errors.New("exp is more than five minutes in the future")
	}
	if cl.Nbf != nil && time.Unix(int64(*cl.Nbf), 0).After(now.Add(skew)) {
		return errors.New("the assertion is not valid yet (nbf)")
	}
	if cl.Jti == "" {
		return errors.New("jti is missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := cl.Iss + "\x00" + cl.Jti
	if until, seen := s.jtis[key]; seen && now.Before(until) {
		return errors.New("jti was used before (replay)")
	}
	s.jtis[key] = exp.Add(skew)
	return nil
}

func decodePart(p string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return errors.New("not base64url")
	}
	return json.Unmarshal(b, v)
}

// clientKeys resolves the candidate keys: a jku must equal the registered
// jwks_uri; without one, the inline set or the jwks_uri.
func (s *Server) clientKeys(c Client, jku string) ([]jwk, error) {
	switch {
	case jku != "" && jku != c.JWKSURI:
		return nil, errors.New("jku is not the registered jwks_uri")
	case jku == "" && c.JWKS != nil:
		return parseJWKS(c.JWKS)
	case c.JWKSURI != "":
		return fetchJWKS(c.JWKSURI)
	}
	return nil, errors.New("the client has no registered keys")
}

func fetchJWKS(u string) ([]jwk, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching jwks_uri: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return parseJWKS(body)
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("bad JWK Set: %w", err)
	}
	for _, k := range set.Keys {
		if k.D != "" {
			return nil, errors.New("the JWK Set holds a private key")
		}
		if k.Kty == "" || k.Kid == "" {
			return nil, errors.New("every JWK needs kty and kid")
		}
	}
	return set.Keys, nil
}

// selectKey finds the single key with kid whose kty fits alg.
func selectKey(keys []jwk, kid, alg string) (crypto.PublicKey, error) {
	kty := map[string]string{"RS256": "RSA", "RS384": "RSA", "ES256": "EC", "ES384": "EC"}[alg]
	if kty == "" {
		return nil, fmt.Errorf("alg %q is not allowed", alg)
	}
	var found []jwk
	for _, k := range keys {
		if k.Kid == kid && k.Kty == kty {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d keys match kid %q and alg %s", len(found), kid, alg)
	}
	return found[0].public()
}

func (k jwk) public() (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding.DecodeString
	if k.Kty == "RSA" {
		n, err1 := dec(k.N)
		e, err2 := dec(k.E)
		if err1 != nil || err2 != nil || len(e) > 4 {
			return nil, errors.New("bad RSA JWK")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[k.Crv]
	x, err1 := dec(k.X)
	y, err2 := dec(k.Y)
	if curve == nil || err1 != nil || err2 != nil {
		return nil, errors.New("bad EC JWK")
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, errors.New("EC JWK coordinates have the wrong length")
	}
	return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
}

// verify checks a JWS signature (RFC 7518 §3.3 and §3.4).
func verify(alg string, pub crypto.PublicKey, input, sig []byte) error {
	var digest []byte
	hash := crypto.SHA384
	if strings.HasSuffix(alg, "256") {
		sum := sha256.Sum256(input)
		digest, hash = sum[:], crypto.SHA256
	} else {
		sum := sha512.Sum384(input)
		digest = sum[:]
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, hash, digest, sig) != nil {
			return errors.New("bad signature")
		}
		return nil
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if want := map[string]int{"ES256": 32, "ES384": 48}[alg]; want != size {
			return fmt.Errorf("%s needs another curve than %s", alg, pub.Curve.Params().Name)
		}
		if len(sig) != 2*size {
			return errors.New("bad signature length")
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, digest, r, s) {
			return errors.New("bad signature")
		}
		return nil
	}
	return errors.New("unsupported key")
}
