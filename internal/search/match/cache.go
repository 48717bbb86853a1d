package match

import (
	"context"
	"net/url"
	"strings"
	"sync"
)

// Cache compiles Matchers on demand and keeps them, for callers that meet
// the same few query lists over and over: the query restrictions of a
// client's scopes, checked on every read. A Matcher that depends on the
// clock (ap on a date) is not kept. The zero Cache is ready to use with
// the default Compiler; it is safe for concurrent use.
type Cache struct {
	// Compiler compiles what the cache does not hold.
	Compiler Compiler

	mu sync.Mutex
	m  map[string]*Matcher
}

// cacheSize bounds the Matchers a Cache keeps; when full it starts over,
// which costs a few compilations and never grows without bound.
const cacheSize = 512

// Matcher returns the Matcher of queries on resourceType, compiled now or
// earlier. Refusals are not kept.
func (c *Cache) Matcher(resourceType string, queries []url.Values) (*Matcher, error) {
	key := cacheKey(resourceType, queries)
	c.mu.Lock()
	m := c.m[key]
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	m, err := c.Compiler.Compile(resourceType, queries)
	if err != nil || m.usesNow {
		return m, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= cacheSize {
		c.m = make(map[string]*Matcher)
	}
	c.m[key] = m
	c.mu.Unlock()
	return m, nil
}

// MatchResource reports whether body, a resource of resourceType,
// matches at least one of queries (the fhirapi.ResourceMatcher seam).
func (c *Cache) MatchResource(ctx context.Context, resourceType string, queries []url.Values, body []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m, err := c.Matcher(resourceType, queries)
	if err != nil {
		return false, err
	}
	return m.Match(body)
}

func cacheKey(resourceType string, queries []url.Values) string {
	var b strings.Builder
	b.WriteString(resourceType)
	for _, q := range queries {
		b.WriteByte('\n') // never in an encoded query
		b.WriteString(q.Encode())
	}
	return b.String()
}
