package jwks

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrBlockedAddress is returned when a jwks_uri (or a redirect from it)
// resolves to an address fhirgate refuses to connect to.
var ErrBlockedAddress = errors.New("address not allowed for a jwks_uri")

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

func ranges(reason string, cidrs ...string) []blockedRange {
	out := make([]blockedRange, len(cidrs))
	for i, c := range cidrs {
		out[i] = blockedRange{netip.MustParsePrefix(c), reason}
	}
	return out
}

// blockedRanges lists the special-purpose ranges of the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and updates) that are not
// globally reachable, plus multicast. A client's jwks_uri must point at a
// public host; anything else would let a client make fhirgate probe its own
// network (SSRF).
var blockedRanges = concat(
	ranges("unspecified", "0.0.0.0/8", "::/128"),
	ranges("loopback", "127.0.0.0/8", "::1/128"),
	ranges("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
	ranges("shared address space (CGNAT)", "100.64.0.0/10"),
	ranges("link-local", "169.254.0.0/16", "fe80::/10"),
	ranges("site-local", "fec0::/10"),
	ranges("multicast", "224.0.0.0/4", "ff00::/8"),
	ranges("reserved", "240.0.0.0/4", "192.0.0.0/24", "192.88.99.0/24", "100::/64", "::/96",
		"64:ff9b:1::/48", "2001::/32", "2001:2::/48", "2001:10::/28", "2001:20::/28"),
	ranges("documentation", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"),
	ranges("benchmarking", "198.18.0.0/15"),
)

func concat(lists ...[]blockedRange) []blockedRange {
	var out []blockedRange
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// BlockedReason returns why ip must not be contacted for a client-supplied
// URL, or "" when it is a public address. IPv6 forms that embed an IPv4
// address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by
// the embedded address.
func BlockedReason(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	ip = ip.Unmap()
	if embedded, ok := embeddedIPv4(ip); ok {
		if r := BlockedReason(embedded); r != "" {
			return r + " (embedded in " + ip.String() + ")"
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}

func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// dialControl returns a net.Dialer Control hook that refuses blocked
// addresses. It runs after DNS resolution, on the exact address about to
// be connected, so neither DNS rebinding nor a redirect to an internal
// host can slip past it.
func dialControl(blocked func(netip.Addr) string) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %q", ErrBlockedAddress, address)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IP address", ErrBlockedAddress, host)
		}
		if reason := blocked(ip); reason != "" {
			return fmt.Errorf("%w: %s is %s", ErrBlockedAddress, ip, reason)
		}
		return nil
	}
}
