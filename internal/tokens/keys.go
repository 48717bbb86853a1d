package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// SigningKey is one of fhirgate's own access-token signing keys as the
// store keeps it. The private key is PKCS #8 PEM ("PRIVATE KEY").
type SigningKey struct {
	KID           string
	Alg           string // JWS algorithm, e.g. "ES256"
	PrivateKeyPEM []byte
	Created       time.Time
	// SignUntil is when the key stops signing new tokens.
	SignUntil time.Time
	// RetireAfter is when the key stops verifying and is no longer
	// published; it lies at least one token lifetime after SignUntil so
	// that every token it signed expires first.
	RetireAfter time.Time
}

// KeyStore persists signing keys; the SQL store implements it. Every
// replica reads the same keys, so tokens verify wherever they land.
type KeyStore interface {
	// ListSigningKeys returns every stored key, in any order.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// PutSigningKey inserts k. When a key with k's KID is stored already,
	// it keeps that key's private key, Alg and Created and only takes
	// SignUntil and RetireAfter from k (an insert that does nothing on
	// conflict, then an update of the validity window). Replicas that
	// create a key at the same moment pick the same KID, and this rule
	// makes the first insert win: every one of them then loads and signs
	// with the same key.
	PutSigningKey(ctx context.Context, k SigningKey) error
	// DeleteSigningKey removes the key; a missing key is not an error.
	DeleteSigningKey(ctx context.Context, kid string) error
}

// DefaultAlg signs access tokens. ES256 costs tens of microseconds per
// signature where RS256 costs about a millisecond, and every JOSE library
// verifies it (see BenchmarkSign and BenchmarkVerify).
const DefaultAlg = "ES256"

// KeyringConfig configures a Keyring.
type KeyringConfig struct {
	Store KeyStore
	// Alg for new keys: ES256 (default), ES384, RS256 or EdDSA.
	Alg string
	// RotateEvery is how long a new key signs (default 30 days).
	RotateEvery time.Duration
	// VerifyGrace is how long a key keeps verifying after it stops
	// signing; it must exceed the longest token lifetime plus clock
	// leeway (default 1 hour).
	VerifyGrace time.Duration
	// ReloadInterval is the least time between two reloads caused by a
	// token naming a kid this replica does not know (default 5s).
	ReloadInterval time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// Keyring holds the signing keys in memory: the one that signs now, all
// that still verify, and the public JWKS.
type Keyring struct {
	cfg KeyringConfig

	mu         sync.RWMutex
	keys       map[string]*liveKey
	signing    *liveKey
	jwks       []byte
	lastReload time.Time
}

type liveKey struct {
	rec SigningKey
	alg jwa.SignatureAlgorithm
	// priv is nil for keys past SignUntil that are only kept to verify.
	priv crypto.Signer
	pub  crypto.PublicKey
	// header is the base64url protected header {"alg","kid","typ"}.
	header string
}

// OpenKeyring loads the stored keys and, when none can sign, generates and
// stores one (fhirgate's first start).
func OpenKeyring(ctx context.Context, cfg KeyringConfig) (*Keyring, error) {
	if cfg.Store == nil {
		return nil, errors.New("tokens: KeyringConfig.Store is required")
	}
	if cfg.Alg == "" {
		cfg.Alg = DefaultAlg
	}
	if _, err := generate(cfg.Alg); err != nil {
		return nil, err
	}
	setDefault(&cfg.RotateEvery, 30*24*time.Hour)
	setDefault(&cfg.VerifyGrace, time.Hour)
	setDefault(&cfg.ReloadInterval, 5*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	k := &Keyring{cfg: cfg}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	if k.signingKey() == nil {
		if err := k.addKey(ctx, false); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func setDefault(v *time.Duration, d time.Duration) {
	if *v <= 0 {
		*v = d
	}
}

// Reload reads the keys from the store again, so keys created or retired
// by another replica take effect here.
func (k *Keyring) Reload(ctx context.Context) error {
	recs, err := k.cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: listing signing keys: %w", err)
	}
	now := k.cfg.Now()
	keys := make(map[string]*liveKey, len(recs))
	var signing *liveKey
	for _, rec := range recs {
		if !now.Before(rec.RetireAfter) {
			continue
		}
		lk, err := load(rec, now)
		if err != nil {
			k.cfg.Logger.ErrorContext(ctx, "ignoring unusable signing key", "kid", rec.KID, "error", err.Error())
			continue
		}
		keys[rec.KID] = lk
		if lk.priv != nil && (signing == nil || newer(rec, signing.rec)) {
			signing = lk
		}
	}
	jwks, err := publicJWKS(keys)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys, k.signing, k.jwks, k.lastReload = keys, signing, jwks, now
	k.mu.Unlock()
	return nil
}

// newer orders keys by creation, then by KID, so that every replica
// picks the same signing key from the same rows, even when two keys were
// created in the same instant.
func newer(a, b SigningKey) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	return a.KID > b.KID
}

func load(rec SigningKey, now time.Time) (*liveKey, error) {
	alg, ok := jwa.LookupSignatureAlgorithm(rec.Alg)
	if !ok {
		return nil, fmt.Errorf("unknown alg %q", rec.Alg)
	}
	block, _ := pem.Decode(rec.PrivateKeyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PKCS #8 PEM private key")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	lk := &liveKey{rec: rec, alg: alg, pub: priv.Public(), header: encodeHeader(rec.Alg, rec.KID)}
	if now.Before(rec.SignUntil) {
		lk.priv = priv
	}
	return lk, nil
}

func encodeHeader(alg, kid string) string {
	h, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		KID string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, TokenType})
	return base64.RawURLEncoding.EncodeToString(h)
}

// publicJWKS renders every live key's public half (RFC 7517 §5) for
// /.well-known/jwks.json.
func publicJWKS(keys map[string]*liveKey) ([]byte, error) {
	list := make([]*liveKey, 0, len(keys))
	for _, lk := range keys {
		list = append(list, lk)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].rec.Created.After(list[j].rec.Created) })
	set := jwk.NewSet()
	for _, lk := range list {
		pk, err := jwk.Import(lk.pub)
		if err != nil {
			return nil, fmt.Errorf("tokens: public JWK of %q: %w", lk.rec.KID, err)
		}
		for name, v := range map[string]any{jwk.KeyIDKey: lk.rec.KID, jwk.AlgorithmKey: lk.alg, jwk.KeyUsageKey: "sig"} {
			if err := pk.Set(name, v); err != nil {
				return nil, err
			}
		}
		if err := set.AddKey(pk); err != nil {
			return nil, err
		}
	}
	return json.Marshal(set)
}

// generate makes a private key for alg.
func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("tokens: unsupported signing algorithm %q (use ES256, ES384, RS256 or EdDSA)", alg)
}

// successorKID is the KID of the key that follows prev, the newest stored
// key ("" when the store holds none). It depends on nothing else, so that
// replicas that add a key at the same moment from the same rows (first
// start on an empty database, or a scheduled rotation seen by all) pick the
// same KID and the store keeps exactly one of their keys.
func successorKID(prev string) string {
	sum := sha256.Sum256([]byte("fhirgate access-token signing key after\x00" + prev))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// addKey adds a signing key and loads what the store then holds. Unless
// force is set (Rotate), it adds nothing when a stored key can sign already:
// another replica made one since this one last looked. Replicas racing past
// that check choose the same KID (successorKID), the first insert wins
// (KeyStore.PutSigningKey), and each signs with the winner once it reloads.
func (k *Keyring) addKey(ctx context.Context, force bool) error {
	recs, err := k.cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: listing signing keys: %w", err)
	}
	now := k.cfg.Now()
	var newest *SigningKey
	stored := make(map[string]bool, len(recs))
	for i, rec := range recs {
		if !force && now.Before(rec.SignUntil) && now.Before(rec.RetireAfter) {
			if _, err := load(rec, now); err == nil {
				return k.Reload(ctx)
			}
		}
		if newest == nil || newer(rec, *newest) {
			newest = &recs[i]
		}
		stored[rec.KID] = true
	}
	kid := ""
	if newest != nil {
		kid = newest.KID
	}
	// Skip KIDs taken already (keys created in the same instant order by
	// KID, so the newest need not be the last of the chain).
	for kid = successorKID(kid); stored[kid]; kid = successorKID(kid) {
	}
	return k.storeKey(ctx, kid, now)
}

// storeKey generates a key named kid, stores it and reloads.
func (k *Keyring) storeKey(ctx context.Context, kid string, now time.Time) error {
	priv, err := generate(k.cfg.Alg)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("tokens: encoding key: %w", err)
	}
	rec := SigningKey{
		KID: kid, Alg: k.cfg.Alg,
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		Created:       now, SignUntil: now.Add(k.cfg.RotateEvery),
		RetireAfter: now.Add(k.cfg.RotateEvery + k.cfg.VerifyGrace),
	}
	if err := k.cfg.Store.PutSigningKey(ctx, rec); err != nil {
		return fmt.Errorf("tokens: storing signing key: %w", err)
	}
	if err := k.Reload(ctx); err != nil {
		return err
	}
	// When another replica stored this KID first, its key is the one
	// loaded; the one generated here was never stored.
	k.cfg.Logger.InfoContext(ctx, "added access-token signing key", "kid", rec.KID, "alg", rec.Alg,
		"sign_until", rec.SignUntil, "retire_after", rec.RetireAfter)
	return nil
}

// Rotate makes a new key the signing key at once; the keys signing until
// now stop signing and keep verifying for VerifyGrace, so tokens they
// signed stay valid until they expire.
func (k *Keyring) Rotate(ctx context.Context) error {
	now := k.cfg.Now()
	k.mu.RLock()
	var old []SigningKey
	for _, lk := range k.keys {
		if lk.priv != nil {
			old = append(old, lk.rec)
		}
	}
	k.mu.RUnlock()
	if err := k.addKey(ctx, true); err != nil {
		return err
	}
	for _, rec := range old {
		rec.SignUntil = now
		rec.RetireAfter = now.Add(k.cfg.VerifyGrace)
		if err := k.cfg.Store.PutSigningKey(ctx, rec); err != nil {
			return fmt.Errorf("tokens: retiring signing key %q: %w", rec.KID, err)
		}
	}
	return k.Reload(ctx)
}

// Maintain is the scheduled job: it reloads, adds a new signing key when
// none may sign any more, and deletes retired keys from the store. Call it
// every few minutes.
func (k *Keyring) Maintain(ctx context.Context) error {
	if err := k.Reload(ctx); err != nil {
		return err
	}
	if k.signingKey() == nil {
		// Before deleting: the new key's KID follows the newest stored
		// key, which replicas must all still see (successorKID).
		if err := k.addKey(ctx, false); err != nil {
			return err
		}
	}
	recs, err := k.cfg.Store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: listing signing keys: %w", err)
	}
	now := k.cfg.Now()
	for _, rec := range recs {
		if !now.Before(rec.RetireAfter) {
			if err := k.cfg.Store.DeleteSigningKey(ctx, rec.KID); err != nil {
				return fmt.Errorf("tokens: deleting retired key %q: %w", rec.KID, err)
			}
			k.cfg.Logger.InfoContext(ctx, "deleted retired signing key", "kid", rec.KID)
		}
	}
	return nil
}

func (k *Keyring) signingKey() *liveKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.signing != nil && k.cfg.Now().Before(k.signing.rec.SignUntil) {
		return k.signing
	}
	return nil
}

// verifyingKey returns the live key for kid. On a miss it reloads from the
// store (at most once per ReloadInterval), since another replica may have
// just rotated.
func (k *Keyring) verifyingKey(ctx context.Context, kid string) (*liveKey, bool) {
	now := k.cfg.Now()
	k.mu.RLock()
	lk, ok := k.keys[kid]
	due := now.Sub(k.lastReload) >= k.cfg.ReloadInterval
	k.mu.RUnlock()
	if ok {
		return lk, now.Before(lk.rec.RetireAfter)
	}
	if !due {
		return nil, false
	}
	if err := k.Reload(ctx); err != nil {
		k.cfg.Logger.ErrorContext(ctx, "reloading signing keys", "error", err.Error())
		return nil, false
	}
	k.mu.RLock()
	lk, ok = k.keys[kid]
	k.mu.RUnlock()
	return lk, ok && now.Before(lk.rec.RetireAfter)
}

// hasKey reports without reloading whether kid still verifies.
func (k *Keyring) hasKey(kid string, now time.Time) bool {
	k.mu.RLock()
	lk, ok := k.keys[kid]
	k.mu.RUnlock()
	return ok && now.Before(lk.rec.RetireAfter)
}

// PublicJWKS returns the JWK Set of the keys that verify access tokens,
// for GET /.well-known/jwks.json.
func (k *Keyring) PublicJWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// SigningKID returns the kid new tokens are signed with ("" if none).
func (k *Keyring) SigningKID() string {
	if lk := k.signingKey(); lk != nil {
		return lk.rec.KID
	}
	return ""
}

// sign signs payload with the current signing key as a compact JWS.
func (k *Keyring) sign(payload []byte) (token string, kid string, err error) {
	lk := k.signingKey()
	if lk == nil {
		return "", "", errors.New("tokens: no signing key (run Keyring.Maintain)")
	}
	signer, err := jws.SignerFor(lk.alg)
	if err != nil {
		return "", "", err
	}
	input := make([]byte, 0, len(lk.header)+1+base64.RawURLEncoding.EncodedLen(len(payload)))
	input = append(input, lk.header...)
	input = append(input, '.')
	input = base64.RawURLEncoding.AppendEncode(input, payload)
	sig, err := signer.Sign(lk.priv, input)
	if err != nil {
		return "", "", fmt.Errorf("tokens: signing: %w", err)
	}
	input = append(input, '.')
	input = base64.RawURLEncoding.AppendEncode(input, sig)
	return string(input), lk.rec.KID, nil
}
