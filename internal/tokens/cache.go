package tokens

import (
	"sync"
	"time"
)

// verifiedCache remembers tokens whose signature and claims were checked,
// keyed by the SHA-256 of the token (never the token itself), until their
// exp. It is bounded: when full it drops expired entries, then an
// arbitrary part of the rest, which only costs a signature check later.
type verifiedCache struct {
	max int

	mu      sync.RWMutex
	entries map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	claims *Claims
	kid    string
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[32]byte]verifiedEntry)}
}

func (c *verifiedCache) get(key [32]byte, now time.Time) (*Claims, string, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || now.Unix() >= e.claims.Expires {
		return nil, "", false
	}
	return e.claims, e.kid, true
}

func (c *verifiedCache) put(key [32]byte, claims *Claims, kid string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = verifiedEntry{claims: claims, kid: kid}
}

func (c *verifiedCache) evict(now time.Time) {
	for k, e := range c.entries {
		if now.Unix() >= e.claims.Expires {
			delete(c.entries, k)
		}
	}
	target := c.max * 3 / 4
	for k := range c.entries {
		if len(c.entries) <= target {
			return
		}
		delete(c.entries, k)
	}
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
