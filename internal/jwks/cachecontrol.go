package jwks

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cachePolicy is what a JWKS response allows a cache to do (RFC 9111 §5.2.2
// plus stale-if-error of RFC 5861 §4).
type cachePolicy struct {
	// explicit is true when the response limits its freshness
	// (Cache-Control or Expires); ttl is then that limit.
	explicit bool
	ttl      time.Duration
	// staleIfError is how long after expiry the set may still be used when
	// refreshing it fails; zero unless the response says so.
	staleIfError time.Duration
}

// parseCachePolicy reads Cache-Control (max-age, no-store, no-cache,
// stale-if-error), falling back to Expires, and subtracts Age.
func parseCachePolicy(h http.Header, now time.Time) cachePolicy {
	var p cachePolicy
	maxAgeSeen := false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				p.explicit, p.ttl, maxAgeSeen = true, 0, true
				p.staleIfError = 0
				return p
			case "max-age":
				p.explicit, maxAgeSeen = true, true
				p.ttl = seconds(value)
			case "stale-if-error":
				p.staleIfError = seconds(value)
			}
		}
	}
	if !maxAgeSeen {
		if exp := h.Get("Expires"); exp != "" {
			p.explicit = true
			p.ttl = 0 // an invalid Expires means "already expired" (RFC 9111 §5.3)
			if t, err := http.ParseTime(exp); err == nil {
				base := now
				if d, err := http.ParseTime(h.Get("Date")); err == nil {
					base = d
				}
				p.ttl = max(t.Sub(base), 0)
			}
		}
	}
	if p.explicit {
		if age := seconds(h.Get("Age")); age > 0 {
			p.ttl = max(p.ttl-age, 0)
		}
	}
	return p
}

// seconds parses a delta-seconds value; anything invalid is 0, the
// conservative reading.
func seconds(s string) time.Duration {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	const maxSeconds = int64(365 * 24 * time.Hour / time.Second)
	return time.Duration(min(n, maxSeconds)) * time.Second
}
