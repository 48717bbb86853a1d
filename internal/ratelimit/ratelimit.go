// Package ratelimit keeps one token bucket per key (a client id, a remote
// address, a URL) with a bounded memory footprint: keys whose bucket has
// refilled are forgotten, so an attacker who invents keys cannot grow the
// map without bound.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the number of buckets kept at once.
const DefaultMaxKeys = 100_000

// Keyed is a set of token buckets, one per key, all with the same rate and
// burst. It is safe for concurrent use. The zero value is not usable; call
// New.
type Keyed struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// New returns buckets refilling at perSecond tokens a second up to burst.
// maxKeys <= 0 means DefaultMaxKeys.
func New(perSecond float64, burst, maxKeys int) *Keyed {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Keyed{limit: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys,
		buckets: make(map[string]*rate.Limiter)}
}

// Every is a convenience for one token per interval.
func Every(interval time.Duration, burst, maxKeys int) *Keyed {
	return New(float64(rate.Every(interval)), burst, maxKeys)
}

func (k *Keyed) bucket(key string, now time.Time) *rate.Limiter {
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.maxKeys {
			k.sweep(now)
		}
		b = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = b
	}
	return b
}

// sweep forgets full buckets (indistinguishable from new ones); if that
// frees nothing, it forgets an arbitrary half, which can only make the
// limiter more lenient for those keys, never stuck.
func (k *Keyed) sweep(now time.Time) {
	for key, b := range k.buckets {
		if b.TokensAt(now) >= float64(k.burst) {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) < k.maxKeys {
		return
	}
	n := 0
	for key := range k.buckets {
		delete(k.buckets, key)
		n++
		if n >= k.maxKeys/2 {
			return
		}
	}
}

// Allow takes one token for key at now. When none is left it takes
// nothing and returns how long until one will be there.
func (k *Keyed) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.bucket(key, now)
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Available reports whether key has a token at now, without taking it,
// and if not how long until it will.
func (k *Keyed) Available(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, found := k.buckets[key]
	if !found {
		return true, 0
	}
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return true, 0
	}
	if k.limit <= 0 {
		return false, time.Duration(math.MaxInt64)
	}
	return false, time.Duration((1 - tokens) / float64(k.limit) * float64(time.Second))
}

// Len returns the number of buckets kept (for tests and metrics).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		return 1
	}
	return s
}
