package client

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/fhirgate/fhirgate/smart"
)

// MaxAssertionLifetime is the longest an authentication JWT may live: its
// exp "SHALL be no more than five minutes in the future"
// (client-confidential-asymmetric.html#authenticating-to-the-token-endpoint).
const MaxAssertionLifetime = smart.AssertionMaxLifetimeSeconds * time.Second

// DefaultAssertionLifetime is the lifetime of assertions when none is
// configured. It stays a minute under the maximum so that a server whose
// clock runs ahead of ours still sees exp within five minutes.
const DefaultAssertionLifetime = 4 * time.Minute

// AssertionClaims are the claims of a client authentication JWT (RFC 7523
// §3, SMART client-confidential-asymmetric): iss and sub are the client id,
// aud is the token endpoint URL, exp is at most five minutes ahead, jti is a
// fresh nonce. iat is not required by SMART but RFC 7523 allows it and some
// servers (Keycloak) want it to judge exp.
type AssertionClaims struct {
	Issuer    string `json:"iss"` // the client id
	Subject   string `json:"sub"` // the client id
	Audience  string `json:"aud"` // the token endpoint URL
	ExpiresAt int64  `json:"exp"` // seconds since the epoch
	IssuedAt  int64  `json:"iat"` // seconds since the epoch
	JWTID     string `json:"jti"` // a nonce, new for every assertion
}

// Assertion describes the client assertions one client sends to one token
// endpoint.
type Assertion struct {
	// Key signs the assertion; its alg and kid go into the header.
	Key *Key
	// ClientID is the client_id the server assigned, used as iss and sub.
	ClientID string
	// TokenURL is the token endpoint, used as aud.
	TokenURL string
	// JKU, when set, is sent as the jku header: the TLS-protected URL of the
	// client's JWK Set. Servers SHALL reject it unless it matches the
	// registered jwks_uri, so set it only to that URL.
	JKU string
	// Lifetime is exp minus now; zero means DefaultAssertionLifetime. It may
	// not exceed MaxAssertionLifetime.
	Lifetime time.Duration
}

// Sign returns a new signed assertion, valid from now. Every call uses a new
// jti: servers reject a replayed jti, so a retried token request needs a
// new assertion, not the old one.
func (a Assertion) Sign(now time.Time) (string, error) {
	if err := a.check(); err != nil {
		return "", err
	}
	jti, err := newJTI()
	if err != nil {
		return "", err
	}
	life := a.Lifetime
	if life == 0 {
		life = DefaultAssertionLifetime
	}
	claims := AssertionClaims{
		Issuer:    a.ClientID,
		Subject:   a.ClientID,
		Audience:  a.TokenURL,
		ExpiresAt: now.Add(life).Unix(),
		IssuedAt:  now.Unix(),
		JWTID:     jti,
	}
	return a.Key.signCompact(jwsHeader{Alg: a.Key.alg, Kid: a.Key.kid, Typ: "JWT", Jku: a.JKU}, claims)
}

func (a Assertion) check() error {
	switch {
	case a.Key == nil:
		return errors.New("client: assertion needs a key")
	case a.ClientID == "":
		return errors.New("client: assertion needs a client id")
	case a.TokenURL == "":
		return errors.New("client: assertion needs the token endpoint URL")
	case a.Lifetime < 0 || a.Lifetime > MaxAssertionLifetime:
		return fmt.Errorf("client: assertion lifetime %v is outside (0, %v]", a.Lifetime, MaxAssertionLifetime)
	}
	return nil
}

// newJTI returns 128 random bits, base64url: unique without coordination.
func newJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("client: jti: %w", err)
	}
	return b64(b[:]), nil
}
