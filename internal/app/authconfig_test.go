package app_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
	"github.com/fhirgate/fhirgate/smart"
)

// TestMaxTokenLifetime: --max-token-lifetime caps the client's
// access_token_expiration (300 s here) in expires_in and in the token's exp.
func TestMaxTokenLifetime(t *testing.T) {
	for _, tc := range []struct {
		name string
		cap  time.Duration
		want float64
	}{
		{"default cap keeps 300", 0, 300},
		{"2m cap", 2 * time.Minute, 120},
		{"1m cap", time.Minute, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ts.Start(t, testdb.SQLiteURL(t), func(c *app.Config) { c.MaxTokenLifetime = tc.cap })
			key := backendClient(t, s, "c1", []string{"system/*.rs"}, false) // access_token_expiration 300
			tr := token(t, s, key, "c1", "system/*.rs")
			if float64(tr.ExpiresIn) != tc.want {
				t.Fatalf("expires_in %d, want %v", tr.ExpiresIn, tc.want)
			}
			intro := s.Do(ts.Req{Method: "POST", Path: "/auth/introspect", Body: url.Values{"token": {tr.AccessToken}}.Encode(),
				Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, 200).JSON(t)
			exp, _ := intro["exp"].(float64)
			if left := exp - float64(time.Now().Unix()); left > tc.want || left < tc.want-10 {
				t.Fatalf("token exp is %v s away, want about %v", left, tc.want)
			}
		})
	}
}

// TestClockLeeway: an assertion whose exp passed 30 s ago is accepted with
// the default 60 s leeway and refused with invalid_client (401) when
// --clock-leeway is 0s (checklist G3).
func TestClockLeeway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		status int
	}{
		{"default 60s", 0, 200},
		{"explicit 60s", 60 * time.Second, 200},
		{"10s", 10 * time.Second, 401},
		{"none", app.ClockLeewayFlag(0), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ts.Start(t, testdb.SQLiteURL(t), func(c *app.Config) { c.ClockLeeway = tc.leeway })
			key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
			// Signed 90 s ago with a 60 s lifetime: exp is 30 s in the past.
			a, err := client.Assertion{Key: key, ClientID: "c1", TokenURL: s.URL + "/auth/token", Lifetime: time.Minute}.
				Sign(time.Now().Add(-90 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			resp, body := postForm(t, s.URL+"/auth/token", url.Values{"grant_type": {"client_credentials"},
				"client_assertion_type": {smart.AssertionTypeJWTBearer}, "client_assertion": {a}, "scope": {"system/*.rs"}}, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 401 {
				if d, _ := body["error_description"].(string); body["error"] != "invalid_client" || !strings.Contains(d, "exp") {
					t.Fatalf("refusal %v, want invalid_client naming exp", body)
				}
			}
		})
	}
}

// TestAuthConfigValidation: out-of-range leeway and lifetime caps are
// refused at start with a message naming the flag.
func TestAuthConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*app.Config)
		want string
	}{
		{"negative leeway", func(c *app.Config) { c.ClockLeeway = -time.Second }, "--clock-leeway -1s: want 0s to 5m0s"},
		{"leeway over 5m", func(c *app.Config) { c.ClockLeeway = 6 * time.Minute }, "--clock-leeway 6m0s: want 0s to 5m0s"},
		{"lifetime under 1m", func(c *app.Config) { c.MaxTokenLifetime = 30 * time.Second }, "--max-token-lifetime 30s: want 1m0s to 1h0m0s"},
		{"lifetime over 1h", func(c *app.Config) { c.MaxTokenLifetime = 2 * time.Hour }, "--max-token-lifetime 2h0m0s: want 1m0s to 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := app.Config{Addr: "127.0.0.1:0", DB: testdb.SQLiteURL(t), DataDir: t.TempDir()}
			tc.mod(&cfg)
			a, err := app.New(t.Context(), cfg)
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			if err.Error() != tc.want {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}
