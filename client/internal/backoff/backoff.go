// Package backoff computes how long an SDK client waits before it asks a
// server again: exponential backoff with jitter, and the Retry-After header
// of RFC 9110 §10.2.3 that servers send with 429 and 503 answers and that
// Bulk Data status responses carry (Bulk Data 2.0 export.html#bulk-data-status-request).
package backoff

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy is an exponential backoff: attempt n waits about Initial*Multiplier^n,
// never more than Max. The zero value is usable and means 500ms doubling to 30s.
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = 500 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	return p
}

// Base is the un-jittered delay of attempt n (counting from 0).
func (p Policy) Base(n int) time.Duration {
	p = p.withDefaults()
	d := float64(p.Initial)
	for i := 0; i < n && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	return min(time.Duration(d), p.Max)
}

// Delay is the delay of attempt n with "equal jitter": half the base delay
// plus a random part of the other half, so that many clients that failed
// together do not come back together.
func (p Policy) Delay(n int) time.Duration {
	b := p.Base(n)
	half := b / 2
	if half <= 0 {
		return b
	}
	return half + rand.N(half+1)
}

// RetryAfter reads a Retry-After header: either delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3). ok is false when the header is absent or
// unreadable. A date in the past gives 0.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Cap absurd values so that the multiplication cannot overflow.
		return time.Duration(min(secs, 1<<31)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Sleep waits for d or until ctx is done, whichever comes first, and
// returns ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
