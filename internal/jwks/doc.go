// Package jwks validates and resolves the public keys that SMART Backend
// Services clients register (client-confidential-asymmetric.html): JWKs
// given inline at registration, or fetched from the client's jwks_uri.
//
// Fetching is guarded against server-side request forgery: only https (http
// when explicitly allowed), no proxies, and every connection address is
// checked in the dialer's Control hook after DNS resolution, so loopback,
// private, link-local, multicast, CGNAT, documentation and other
// non-public addresses are refused unless Config.AllowPrivate is set; this
// also covers redirects and DNS rebinding. Responses are size-capped and
// time-bounded, cached no longer than their Cache-Control allows (SMART-ASYM
// "SHALL NOT cache for longer than allowed"), fetched once for concurrent
// callers, and refetched once (rate-limited per client) when an assertion
// names a kid the cached set does not hold.
package jwks
