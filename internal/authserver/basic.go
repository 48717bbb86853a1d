package authserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/internal/ratelimit"
	"github.com/fhirgate/fhirgate/smart"
)

// AuthenticateBasic authenticates a /fhir request that carries HTTP Basic
// client_id:secret, Aidbox's "basic" grant (seed
// aidbox-client-secret-basic.txt): the client must exist, be active, hold
// grant type "basic" and present its secret. The request's scopes are
// c.BasicScopes(); AccessPolicy still decides.
//
// Errors are *smart.Error: invalid_client (401) or slow_down (429 with
// RetryAfter) after repeated failures for this client id; anything else is
// internal. The HTTP layer renders them as OperationOutcome.
func (s *Server) AuthenticateBasic(ctx context.Context, clientID, secret string) (*Client, error) {
	c, err := s.verifyClientSecret(ctx, clientID, secret)
	if err == nil && !c.HasGrant(GrantBasic) {
		c, err = nil, smart.InvalidClient("client %q may not use HTTP Basic on the FHIR API (grant type %q is not registered)", c.ID, GrantBasic)
	}
	s.auditBasic(ctx, clientID, "basic", err)
	return c, err
}

// AuthenticateSecret checks client credentials without asking for a grant
// type, for endpoints any registered client may call with its secret, such
// as token introspection. Errors are as for AuthenticateBasic.
func (s *Server) AuthenticateSecret(ctx context.Context, clientID, secret string) (*Client, error) {
	c, err := s.verifyClientSecret(ctx, clientID, secret)
	s.auditBasic(ctx, clientID, "secret", err)
	return c, err
}

// verifyClientSecret is the shared secret check: throttled per client id,
// argon2id in constant time (also for unknown ids, against a dummy hash,
// so timing does not reveal which ids exist), with a short-lived cache of
// verified credentials.
func (s *Server) verifyClientSecret(ctx context.Context, id, secret string) (*Client, error) {
	now := s.cfg.Now()
	ck := s.secrets.key(id, secret)
	c, err := s.clients.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c != nil && c.SecretHash != "" && s.secrets.hit(ck, c.SecretHash, now) {
		return c, checkActive(c, id)
	}
	if ok, wait := s.failures.Available(id, now); !ok {
		return nil, smart.SlowDown(ratelimit.RetryAfterSeconds(wait),
			"too many failed authentications for client %q; retry later", shorten(id))
	}
	hash := s.dummy.get()
	if c != nil && c.SecretHash != "" {
		hash = c.SecretHash
	}
	match, err := s.verifyHash(ctx, hash, secret)
	if err != nil {
		return nil, err
	}
	if !match || c == nil || c.SecretHash == "" {
		s.failures.Allow(id, now)
		return nil, smart.InvalidClient("client authentication failed: unknown client, no secret registered, or wrong secret")
	}
	if err := checkActive(c, id); err != nil {
		return nil, err
	}
	s.secrets.put(ck, c.SecretHash, now)
	return c, nil
}

// verifyHash runs argon2id with bounded concurrency (each run holds 19 MiB).
func (s *Server) verifyHash(ctx context.Context, hash, secret string) (bool, error) {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashSem }()
	s.hashRuns.Add(1)
	return VerifySecret(hash, secret), nil
}

// dummyHash is a hash of a random secret, made once, verified against for
// unknown client ids.
type dummyHash struct {
	once sync.Once
	hash string
}

func (d *dummyHash) get() string {
	d.once.Do(func() {
		var b [32]byte
		rand.Read(b[:])
		d.hash, _ = HashSecret(string(b[:]))
	})
	return d.hash
}

// secretCache remembers credentials verified recently. Entries are keyed by
// an HMAC-SHA256, under a key made at start and never stored, of
// id and secret; the secret itself is never kept. An entry only counts
// while the client's current secret hash is the one it was verified
// against, so a changed secret invalidates it at once.
type secretCache struct {
	ttl    time.Duration
	macKey [32]byte

	mu      sync.Mutex
	entries map[[32]byte]secretEntry
}

type secretEntry struct {
	hash    string
	expires time.Time
}

const maxSecretEntries = 10_000

func newSecretCache(ttl time.Duration) *secretCache {
	c := &secretCache{ttl: ttl, entries: make(map[[32]byte]secretEntry)}
	rand.Read(c.macKey[:])
	return c
}

func (c *secretCache) key(id, secret string) [32]byte {
	m := hmac.New(sha256.New, c.macKey[:])
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	var k [32]byte
	m.Sum(k[:0])
	return k
}

func (c *secretCache) hit(k [32]byte, currentHash string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return ok && e.hash == currentHash && now.Before(e.expires)
}

func (c *secretCache) put(k [32]byte, hash string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxSecretEntries {
		for key, e := range c.entries {
			if !now.Before(e.expires) || len(c.entries) >= maxSecretEntries {
				delete(c.entries, key)
			}
		}
	}
	c.entries[k] = secretEntry{hash: hash, expires: now.Add(c.ttl)}
}
