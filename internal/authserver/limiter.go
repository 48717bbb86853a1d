package authserver

import (
	"net/netip"
	"time"

	"github.com/fhirgate/fhirgate/internal/ratelimit"
	"github.com/fhirgate/fhirgate/smart"
)

// TokenLimiterConfig sets the token endpoint's rate limits. Zero fields
// take the defaults, which leave room for batch clients that fetch
// thousands of tokens a minute.
type TokenLimiterConfig struct {
	// PerClient is the sustained rate per client id in requests a second
	// (default 100, i.e. 6,000 a minute) and ClientBurst its burst (default 500).
	PerClient   float64
	ClientBurst int
	// PerAddress is the sustained rate per remote address (default 200 a
	// second, 12,000 a minute) and AddressBurst its burst (default 1,000).
	// IPv6 addresses count per /64, the block one host usually holds.
	PerAddress   float64
	AddressBurst int
}

// TokenLimiter rate-limits the token endpoint per client id and per
// remote address. Server.Token consults it when Config.Limits is set; the
// HTTP layer may also call Allow for other endpoints. A nil *TokenLimiter
// allows everything.
type TokenLimiter struct {
	clients *ratelimit.Keyed
	addrs   *ratelimit.Keyed
}

// NewTokenLimiter returns a limiter with cfg (defaults filled in).
func NewTokenLimiter(cfg TokenLimiterConfig) *TokenLimiter {
	if cfg.PerClient <= 0 {
		cfg.PerClient = 100
	}
	if cfg.ClientBurst <= 0 {
		cfg.ClientBurst = 500
	}
	if cfg.PerAddress <= 0 {
		cfg.PerAddress = 200
	}
	if cfg.AddressBurst <= 0 {
		cfg.AddressBurst = 1000
	}
	return &TokenLimiter{
		clients: ratelimit.New(cfg.PerClient, cfg.ClientBurst, 0),
		addrs:   ratelimit.New(cfg.PerAddress, cfg.AddressBurst, 0),
	}
}

// AllowAddress takes a token for the remote address; when none is left it
// returns how long to wait (for Retry-After).
func (l *TokenLimiter) AllowAddress(remote string, now time.Time) (bool, time.Duration) {
	if l == nil || remote == "" {
		return true, 0
	}
	return l.addrs.Allow(addressKey(remote), now)
}

// AllowClient takes a token for the client id.
func (l *TokenLimiter) AllowClient(clientID string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	return l.clients.Allow(clientID, now)
}

func (l *TokenLimiter) checkAddress(remote string, now time.Time) error {
	if ok, wait := l.AllowAddress(remote, now); !ok {
		return smart.SlowDown(ratelimit.RetryAfterSeconds(wait), "too many token requests from this address; retry later")
	}
	return nil
}

func (l *TokenLimiter) checkClient(id string, now time.Time) error {
	if ok, wait := l.AllowClient(id, now); !ok {
		return smart.SlowDown(ratelimit.RetryAfterSeconds(wait), "too many token requests for client %q; retry later", shorten(id))
	}
	return nil
}

// addressKey groups IPv6 addresses by /64; anything unparsable is used as is.
func addressKey(remote string) string {
	ip, err := netip.ParseAddr(remote)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(remote); err2 == nil {
			ip = ap.Addr()
		} else {
			return remote
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
