package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
)

// TokenType is the JOSE "typ" of fhirgate access tokens (RFC 9068 §2.1),
// which keeps them apart from any other JWT, such as a client assertion.
const TokenType = "at+jwt"

// MaxTokenBytes bounds the size of a token that is even looked at.
const MaxTokenBytes = 8 << 10

// Claims are the claims of a fhirgate access token.
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	ID       string `json:"jti"`
	// Registration is the registration of the client the token was issued
	// to (see Client.Registration); omitted when the store knows none.
	Registration string `json:"client_reg,omitempty"`
}

// Client is who a token is issued to.
type Client struct {
	ID string
	// Registration identifies the client's current registration: it stays
	// the same while the client is replaced and changes when the client is
	// deleted and registered again under the same id. The token carries
	// it, and Verify refuses a token whose client's registration differs,
	// so that deleting a client revokes its tokens for good rather than
	// until someone registers the id again. "" when the store cannot tell.
	Registration string
}

// ErrInvalidToken wraps every verification failure; the resource server
// answers it with 401 and WWW-Authenticate: Bearer error="invalid_token"
// (RFC 6750 §3.1).
var ErrInvalidToken = errors.New("invalid access token")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// ClientActivity answers, fast, whether a client may still use its
// tokens: deleting a client or setting active=false must stop its tokens
// at once, so Verify asks on every call.
type ClientActivity interface {
	// ClientRegistration returns the client's current registration (see
	// Client.Registration) and whether it exists and is active.
	ClientRegistration(ctx context.Context, clientID string) (registration string, active bool, err error)
}

// Config configures a Service.
type Config struct {
	// Issuer is the base URL; it goes into "iss" and is required on verify.
	Issuer  string
	Keyring *Keyring
	// Clients is consulted on every verification.
	Clients ClientActivity
	// CacheSize bounds the verified-token cache (default 100,000 entries).
	CacheSize int
	Now       func() time.Time
}

// Service issues and verifies access tokens.
type Service struct {
	cfg   Config
	cache *verifiedCache
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Issuer == "" || cfg.Keyring == nil || cfg.Clients == nil {
		return nil, errors.New("tokens: Issuer, Keyring and Clients are required")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, cache: newVerifiedCache(cfg.CacheSize)}, nil
}

// Keyring returns the keyring, e.g. to serve its public JWKS.
func (s *Service) Keyring() *Keyring { return s.cfg.Keyring }

// Issue signs an access token for client with the granted scope, valid
// for lifetime from now.
func (s *Service) Issue(client Client, scope string, lifetime time.Duration) (string, Claims, error) {
	now := s.cfg.Now()
	c := Claims{
		Issuer: s.cfg.Issuer, Subject: client.ID, ClientID: client.ID, Scope: scope,
		IssuedAt: now.Unix(), Expires: now.Add(lifetime).Unix(), ID: randomID(),
		Registration: client.Registration,
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", Claims{}, err
	}
	tok, _, err := s.cfg.Keyring.sign(payload)
	if err != nil {
		return "", Claims{}, err
	}
	return tok, c, nil
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Verify checks a bearer token: signature by a live fhirgate key with the
// algorithm pinned to that key, typ, iss, exp (and iat not in the future),
// and that the client is still active and still the registration the token
// was issued to. Tokens verified before are answered
// from a cache keyed by their SHA-256, which keeps them only until their
// exp; the client check and key retirement are still applied every time.
func (s *Service) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" || len(token) > MaxTokenBytes {
		return nil, invalidf("empty or oversized token")
	}
	now := s.cfg.Now()
	key := sha256.Sum256([]byte(token))
	c, kid, ok := s.cache.get(key, now)
	if !ok || !s.cfg.Keyring.hasKey(kid, now) {
		var err error
		if c, kid, err = s.verifySignature(ctx, token, now); err != nil {
			return nil, err
		}
		s.cache.put(key, c, kid, now)
	}
	if err := s.checkClient(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

type tokenHeader struct {
	Alg  string `json:"alg"`
	KID  string `json:"kid"`
	Typ  string `json:"typ"`
	Crit any    `json:"crit"`
}

func (s *Service) verifySignature(ctx context.Context, token string, now time.Time) (*Claims, string, error) {
	h, err := parseHeader(token)
	if err != nil {
		return nil, "", err
	}
	lk, ok := s.cfg.Keyring.verifyingKey(ctx, h.KID)
	if !ok {
		return nil, "", invalidf("unknown or retired signing key")
	}
	if h.Alg != lk.rec.Alg || h.Typ != TokenType || h.Crit != nil {
		return nil, "", invalidf("unexpected token header")
	}
	payload, err := jws.VerifyCompactFast(lk.pub, []byte(token), lk.alg)
	if err != nil {
		return nil, "", invalidf("bad signature")
	}
	var c Claims
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal(payload, &c) != nil {
		return nil, "", invalidf("claims are not a JSON object")
	}
	if err := s.checkClaims(&c, now); err != nil {
		return nil, "", err
	}
	return &c, h.KID, nil
}

func parseHeader(token string) (tokenHeader, error) {
	var h tokenHeader
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return h, invalidf("not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return h, invalidf("header is not base64url")
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, invalidf("header is not a JSON object")
	}
	return h, nil
}

func (s *Service) checkClaims(c *Claims, now time.Time) error {
	switch {
	case c.Issuer != s.cfg.Issuer:
		return invalidf("issued by someone else")
	case c.ClientID == "" || c.Subject != c.ClientID:
		return invalidf("no client")
	case c.Expires == 0 || now.Unix() >= c.Expires:
		return invalidf("expired")
	case c.IssuedAt > now.Unix()+60:
		return invalidf("issued in the future")
	}
	return nil
}

func (s *Service) checkClient(ctx context.Context, c *Claims) error {
	reg, active, err := s.cfg.Clients.ClientRegistration(ctx, c.ClientID)
	if err != nil {
		return fmt.Errorf("tokens: checking client %q: %w", c.ClientID, err)
	}
	if !active {
		return invalidf("the client is no longer active")
	}
	// A token from before the client was deleted and registered again
	// belongs to a registration that no longer exists.
	if reg != c.Registration {
		return invalidf("the client was registered again after the token was issued")
	}
	return nil
}

// ExpiresAt returns exp as a time.
func (c *Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0) }
