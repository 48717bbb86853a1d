package authserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// clientCache keeps parsed clients for a short TTL, so that verifying a
// token on every FHIR request ("is the client still active?") costs a map
// lookup, not a query and a JSON parse. Unknown ids are not cached.
type clientCache struct {
	store ClientStore
	ttl   time.Duration
	now   func() time.Time
	group singleflight.Group

	mu      sync.RWMutex
	entries map[string]cachedClient
	// version changes on every forget, so that a load that started before
	// a change neither caches its stale result nor hands it to callers
	// who arrive after the change.
	version uint64
}

type cachedClient struct {
	client *Client
	loaded time.Time
}

func newClientCache(store ClientStore, ttl time.Duration, now func() time.Time) *clientCache {
	return &clientCache{store: store, ttl: ttl, now: now, entries: make(map[string]cachedClient)}
}

// get returns the client, or nil when no client has id.
func (cc *clientCache) get(ctx context.Context, id string) (*Client, error) {
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.entries[id]
	version := cc.version
	cc.mu.RUnlock()
	if ok && now.Sub(e.loaded) < cc.ttl {
		return e.client, nil
	}
	key := fmt.Sprintf("%d\x00%s", version, id)
	v, err, _ := cc.group.Do(key, func() (any, error) { return cc.load(ctx, id, version) })
	if err != nil {
		return nil, err
	}
	return v.(*Client), nil
}

func (cc *clientCache) load(ctx context.Context, id string, version uint64) (*Client, error) {
	doc, hash, reg, ok, err := cc.lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("authserver: looking up client %q: %w", id, err)
	}
	if !ok {
		return (*Client)(nil), nil
	}
	c, err := LoadClient(doc, hash)
	if err != nil {
		return nil, fmt.Errorf("authserver: stored client %q is unusable: %w", id, err)
	}
	if c.ID == "" {
		c.ID = id
	}
	c.Registration = reg
	cc.mu.Lock()
	if cc.version == version {
		cc.entries[id] = cachedClient{client: c, loaded: cc.now()}
	}
	cc.mu.Unlock()
	return c, nil
}

// lookup asks the store, with the registration when it can tell it.
func (cc *clientCache) lookup(ctx context.Context, id string) (doc []byte, hash, reg string, ok bool, err error) {
	if rs, can := cc.store.(RegisteredClientStore); can {
		return rs.LookupRegisteredClient(ctx, id)
	}
	doc, hash, ok, err = cc.store.LookupClient(ctx, id)
	return doc, hash, "", ok, err
}

// forget drops id and returns the client that was cached, if any.
func (cc *clientCache) forget(id string) *Client {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	old := cc.entries[id]
	delete(cc.entries, id)
	cc.version++
	return old.client
}

// forgetAll drops every cached client and returns them.
func (cc *clientCache) forgetAll() []*Client {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	out := make([]*Client, 0, len(cc.entries))
	for _, e := range cc.entries {
		out = append(out, e.client)
	}
	cc.entries = make(map[string]cachedClient)
	cc.version++
	return out
}
