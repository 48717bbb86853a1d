package app_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
	"github.com/fhirgate/fhirgate/smart"
)

// TestTokenRateLimit429: past --token-rate-client or --token-rate-address
// (0.2 a second here, so a burst of 2) POST /auth/token answers 429 with
// the RFC 6749 error JSON (slow_down), Retry-After and no-store.
func TestTokenRateLimit429(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*app.Config)
		// junk: the third request carries an assertion that does not
		// verify; only the address limit, applied before verification,
		// may refuse it with 429.
		junk bool
		diag string
	}{
		{"per client", func(c *app.Config) { c.TokenRatePerClient = 0.2 }, false, `too many token requests for client "c1"`},
		{"per address", func(c *app.Config) { c.TokenRatePerAddress = 0.2 }, false, "too many token requests from this address"},
		{"per address, before verification", func(c *app.Config) { c.TokenRatePerAddress = 0.2 }, true, "too many token requests from this address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ts.Start(t, testdb.SQLiteURL(t), tc.mod)
			key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
			form := func(a string) url.Values {
				return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
					"client_assertion": {a}, "scope": {"system/*.rs"}}
			}
			for i := 0; i < 2; i++ {
				if resp, body := postForm(t, s.URL+"/auth/token", form(assertion(t, s, key, "c1")), nil); resp.StatusCode != 200 {
					t.Fatalf("request %d within the burst: %d %v", i+1, resp.StatusCode, body)
				}
			}
			a := assertion(t, s, key, "c1")
			if tc.junk {
				a = "a.b.c"
			}
			resp, body := postForm(t, s.URL+"/auth/token", form(a), nil)
			if resp.StatusCode != 429 {
				t.Fatalf("status %d %v, want 429", resp.StatusCode, body)
			}
			if body["error"] != "slow_down" || !strings.Contains(body["error_description"].(string), tc.diag) {
				t.Fatalf("body %v, want slow_down with %q", body, tc.diag)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("429 without Cache-Control: no-store")
			}
			// One token every 5 s: the wait is at most 5 s.
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
				t.Fatalf("Retry-After %q, want 1 to 5 seconds", resp.Header.Get("Retry-After"))
			}
		})
	}
}
