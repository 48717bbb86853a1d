package jwks

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestBlockedReason(t *testing.T) {
	tests := []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true},
		{"10.1.2.3", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"fc00::1", true}, {"fd12:3456::1", true},
		{"169.254.169.254", true}, {"fe80::1", true},
		{"100.64.0.1", true}, {"100.127.255.255", true},
		{"0.0.0.0", true}, {"::", true},
		{"224.0.0.1", true}, {"239.255.255.250", true}, {"ff02::1", true},
		{"255.255.255.255", true}, {"240.0.0.1", true},
		{"192.0.2.1", true}, {"198.51.100.7", true}, {"203.0.113.9", true}, {"2001:db8::1", true},
		{"198.18.0.1", true},
		{"::ffff:127.0.0.1", true}, {"::ffff:10.0.0.1", true},
		{"64:ff9b::a00:1", true},      // NAT64 of 10.0.0.1
		{"2002:7f00:1::1", true},      // 6to4 of 127.0.0.1
		{"2001:0:4136:e378::1", true}, // Teredo
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"172.32.0.1", false}, {"100.128.0.1", false},
		{"2606:4700:4700::1111", false}, {"::ffff:8.8.8.8", false}, {"64:ff9b::808:808", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			reason := BlockedReason(netip.MustParseAddr(tt.ip))
			if (reason != "") != tt.blocked {
				t.Fatalf("BlockedReason(%s) = %q, want blocked=%v", tt.ip, reason, tt.blocked)
			}
		})
	}
}

func TestParseCachePolicy(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		headers  map[string]string
		explicit bool
		ttl      time.Duration
		stale    time.Duration
	}{
		{"none", nil, false, 0, 0},
		{"max-age", map[string]string{"Cache-Control": "public, max-age=600"}, true, 600 * time.Second, 0},
		{"max-age quoted", map[string]string{"Cache-Control": `max-age="60"`}, true, 60 * time.Second, 0},
		{"max-age minus Age", map[string]string{"Cache-Control": "max-age=600", "Age": "100"}, true, 500 * time.Second, 0},
		{"no-store", map[string]string{"Cache-Control": "no-store, max-age=600"}, true, 0, 0},
		{"no-cache", map[string]string{"Cache-Control": "No-Cache"}, true, 0, 0},
		{"bad max-age", map[string]string{"Cache-Control": "max-age=ten"}, true, 0, 0},
		{"stale-if-error", map[string]string{"Cache-Control": "max-age=60, stale-if-error=3600"}, true, time.Minute, time.Hour},
		{"expires", map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat)}, true, time.Hour, 0},
		{"expires relative to Date", map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat),
			"Date": now.Add(-time.Hour).Format(http.TimeFormat)}, true, 2 * time.Hour, 0},
		{"invalid expires", map[string]string{"Expires": "0"}, true, 0, 0},
		{"max-age wins over expires", map[string]string{"Cache-Control": "max-age=5", "Expires": now.Add(time.Hour).Format(http.TimeFormat)}, true, 5 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			p := parseCachePolicy(h, now)
			if p.explicit != tt.explicit || p.ttl != tt.ttl || p.staleIfError != tt.stale {
				t.Fatalf("policy = %+v, want explicit=%v ttl=%v stale=%v", p, tt.explicit, tt.ttl, tt.stale)
			}
		})
	}
}
