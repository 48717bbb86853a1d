package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
	"github.com/fhirgate/fhirgate/smart"
)

// sharedBase is the public base URL of both servers of a cluster test:
// behind one load balancer they are one authorization server, so
// assertions name one aud and tokens carry one iss.
const sharedBase = "http://fhirgate.cluster.example"

// twoServers starts server A, then server B, on one PostgreSQL database.
// B starts after A has created the signing key, so both sign with it.
func twoServers(t *testing.T) (a, b *ts.Server) {
	t.Helper()
	url := testdb.PostgresURL(t)
	cfg := func(c *app.Config) { c.BaseURL = sharedBase }
	a = ts.Start(t, url, cfg)
	b = ts.Start(t, url, cfg)
	return a, b
}

// propagation bounds how long a configuration change made at one server
// may take to reach the other: app.watchConfig polls the store every
// second; the rest is slack for a busy machine.
const propagation = 3 * time.Second

// untilStatus repeats r at s until it answers want, failing after
// propagation; it returns how long that took.
func untilStatus(t *testing.T, s *ts.Server, r ts.Req, want int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := s.Do(r)
		if got.StatusCode == want {
			return time.Since(start)
		}
		if time.Since(start) > propagation {
			t.Fatalf("%s %s still answers %d after %s, want %d: %s", r.Method, r.Path, got.StatusCode, time.Since(start), want, got.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func clusterAssertion(t *testing.T, key *client.Key, id string) string {
	t.Helper()
	a, err := client.Assertion{Key: key, ClientID: id, TokenURL: sharedBase + "/auth/token"}.Sign(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tokenForm(assertion string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
		"client_assertion": {assertion}, "scope": {"system/*.rs"}}
}

// TestTwoServersAssertionReplay: an assertion used at server A is refused
// at server B as a replay (SMART Backend Services: the jti must not be
// reused), and the other way round.
func TestTwoServersAssertionReplay(t *testing.T) {
	a, b := twoServers(t)
	key := backendClient(t, a, "c1", []string{"system/*.rs"}, false)
	for _, pair := range []struct {
		name        string
		first, then *ts.Server
	}{{"A then B", a, b}, {"B then A", b, a}} {
		t.Run(pair.name, func(t *testing.T) {
			as := clusterAssertion(t, key, "c1")
			if resp, body := postForm(t, pair.first.URL+"/auth/token", tokenForm(as), nil); resp.StatusCode != 200 {
				t.Fatalf("first use: %d %v", resp.StatusCode, body)
			}
			resp, body := postForm(t, pair.then.URL+"/auth/token", tokenForm(as), nil)
			if resp.StatusCode != 401 || body["error"] != "invalid_client" {
				t.Fatalf("replay at the other server: %d %v, want 401 invalid_client", resp.StatusCode, body)
			}
		})
	}
}

// TestTwoServersShareTokens: a token issued by server A is accepted by
// server B, for the FHIR API and for introspection.
func TestTwoServersShareTokens(t *testing.T) {
	a, b := twoServers(t)
	a.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
	key := backendClient(t, a, "c1", []string{"system/*.rs"}, false)
	tr, err := client.RequestToken(context.Background(), http.DefaultClient, a.URL+"/auth/token", clusterAssertion(t, key, "c1"), "system/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	// The allow policy registered at A reaches B within the poll.
	untilStatus(t, b, ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}, 200)
	resp, body := postForm(t, b.URL+"/auth/introspect", url.Values{"token": {tr.AccessToken}},
		map[string]string{"Authorization": bearer(tr.AccessToken)})
	if resp.StatusCode != 200 || body["active"] != true || body["client_id"] != "c1" {
		t.Fatalf("introspection at B: %d %v", resp.StatusCode, body)
	}
}

// TestTwoServersClientChange: deactivating or deleting a client through
// server A's admin API stops its token at server B within the time the
// code documents: B polls the configuration revision every second
// (app.watchConfig) and drops its cached clients, and a cached client is
// reused for at most 5 s anyway (authserver.Config.ClientCacheTTL).
func TestTwoServersClientChange(t *testing.T) {
	for _, change := range []string{"deactivate", "delete"} {
		t.Run(change, func(t *testing.T) {
			a, b := twoServers(t)
			a.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
			key := backendClient(t, a, "c1", []string{"system/*.rs"}, false)
			tr, err := client.RequestToken(context.Background(), http.DefaultClient, a.URL+"/auth/token", clusterAssertion(t, key, "c1"), "system/*.rs")
			if err != nil {
				t.Fatal(err)
			}
			// B has seen the policy, verified the token and cached the client.
			untilStatus(t, b, ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}, 200)
			switch change {
			case "deactivate":
				c := a.Do(ts.Req{Method: "GET", Path: "/Client/c1"}).Expect(t, 200).JSON(t)
				c["active"] = false
				body, _ := json.Marshal(c)
				a.Do(ts.Req{Method: "PUT", Path: "/Client/c1", Body: string(body)}).Expect(t, 200)
			case "delete":
				a.Do(ts.Req{Method: "DELETE", Path: "/Client/c1"}).Expect(t, 200)
			}
			a.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 401)
			took := untilStatus(t, b, ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}, 401)
			t.Logf("B refused the token %s after the change at A", took.Round(time.Millisecond))
			// B refuses new tokens to the client as well.
			resp, body := postForm(t, b.URL+"/auth/token", tokenForm(clusterAssertion(t, key, "c1")), nil)
			if resp.StatusCode != 401 || body["error"] != "invalid_client" {
				t.Fatalf("token at B for a %sd client: %d %v", change, resp.StatusCode, body)
			}
		})
	}
}
