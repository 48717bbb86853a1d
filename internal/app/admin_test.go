package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/authserver"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

const seedClient = `{
  "type": "bulk-api-client",
  "active": true,
  "auth": {"client_credentials": {"client_assertion_types": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
    "access_token_expiration": 300, "token_format": "jwt"}},
  "scope": ["system/*.read"],
  "jwks_uri": "https://example.org/.well-known/jwks.json",
  "grant_types": ["client_credentials"],
  "secret": "super-secret-value"
}`

func TestAdminAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		r := s.Do(ts.Req{Method: "PUT", Path: "/Client/inferno-bulk", Body: seedClient, Header: map[string]string{"Content-Type": "application/json"}}).Expect(t, 201)
		c := r.JSON(t)
		if c["id"] != "inferno-bulk" || c["resourceType"] != "Client" || c["type"] != "bulk-api-client" {
			t.Fatalf("stored client %s", r.Body)
		}
		for _, leak := range []string{"secret", "super-secret-value", "argon2"} {
			if strings.Contains(string(r.Body), leak) {
				t.Fatalf("PUT response leaks %q: %s", leak, r.Body)
			}
		}
		got := s.Do(ts.Req{Method: "GET", Path: "/Client/inferno-bulk"}).Expect(t, 200)
		if strings.Contains(string(got.Body), "super-secret-value") || strings.Contains(string(got.Body), "secret") {
			t.Fatalf("GET leaks the secret: %s", got.Body)
		}
		rec, err := s.Store().GetClient(context.Background(), "inferno-bulk")
		if err != nil || !strings.HasPrefix(rec.SecretHash, "$argon2id$") || strings.Contains(string(rec.Body), "super-secret") {
			t.Fatalf("stored record: hash %q body %s err %v", rec.SecretHash, rec.Body, err)
		}
		s.Do(ts.Req{Method: "PUT", Path: "/Client/inferno-bulk", Body: strings.Replace(seedClient, `"active": true`, `"active": false`, 1)}).Expect(t, 200)
		list := s.Do(ts.Req{Method: "GET", Path: "/Client"}).Expect(t, 200).JSON(t)
		if list["total"] != float64(1) {
			t.Fatalf("list %v", list)
		}
		for _, tc := range []struct{ name, path, body, field string }{
			{"id differs", "/Client/x", strings.Replace(seedClient, "{", `{"id":"y",`, 1), "id"},
			{"reserved id", "/Client/root", seedClient, "id"},
			{"bad grant", "/Client/x", strings.Replace(seedClient, `["client_credentials"]`, `["password"]`, 1), "grant_types[0]"},
			{"private key", "/Client/x", strings.Replace(seedClient, `"jwks_uri": "https://example.org/.well-known/jwks.json"`,
				`"jwks": {"keys": [{"kty":"EC","kid":"k","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}]}`, 1), "jwks.keys[0].d"},
			{"bad policy engine", "/AccessPolicy/x", `{"engine":"sql","sql":{"query":"select true"}}`, "engine"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do(ts.Req{Method: "PUT", Path: tc.path, Body: tc.body}).Expect(t, 422)
				m := r.JSON(t)
				issue := m["issue"].([]any)[0].(map[string]any)
				expr, _ := issue["expression"].([]any)
				if len(expr) == 0 || expr[0] != tc.field {
					t.Fatalf("422 does not name %s: %s", tc.field, r.Body)
				}
			})
		}
		s.Do(ts.Req{Method: "PUT", Path: "/Client/x", Body: `[]`}).Expect(t, 400)
		s.Do(ts.Req{Method: "GET", Path: "/Client/nobody"}).Expect(t, 404).Outcome(t)

		pol := `{"engine":"allow","link":[{"id":"inferno-bulk","resourceType":"Client"}]}`
		p := s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/allow-bulk", Body: pol}).Expect(t, 201).JSON(t)
		if p["resourceType"] != "AccessPolicy" || p["engine"] != "allow" || p["id"] != "allow-bulk" {
			t.Fatalf("policy %v", p)
		}
		s.Do(ts.Req{Method: "GET", Path: "/AccessPolicy/allow-bulk"}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/AccessPolicy"}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/AccessPolicy/allow-bulk"}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/AccessPolicy/allow-bulk"}).Expect(t, 404)
		s.Do(ts.Req{Method: "DELETE", Path: "/Client/inferno-bulk"}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/Client/inferno-bulk"}).Expect(t, 404)

		// Refusals: no credentials, wrong secret.
		s.Do(ts.Req{Method: "GET", Path: "/Client", Auth: "none"}).Expect(t, 401).Outcome(t)
		s.Do(ts.Req{Method: "PUT", Path: "/Client/x", Body: `{}`, Auth: "Basic cm9vdDp3cm9uZw=="}).Expect(t, 401)
		if strings.Contains(s.Logs.String(), "super-secret-value") {
			t.Fatal("the secret reached the log")
		}
	})
}

// TestAdminWithoutRootSecret: without --root-secret the admin API answers
// 401 to everyone, whatever they send.
func TestAdminWithoutRootSecret(t *testing.T) {
	s := ts.Start(t, testdb.SQLiteURL(t), func(c *app.Config) { c.RootSecret = "" })
	for _, auth := range []string{"none", "root", "Basic cm9vdDo=" /* root: */} {
		d := s.Do(ts.Req{Method: "GET", Path: "/Client", Auth: auth}).Expect(t, 401).Outcome(t)
		if !strings.Contains(d, "root-secret") {
			t.Fatalf("diagnostics should say how to enable the admin API: %q", d)
		}
	}
	s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/x", Auth: "root"}).Expect(t, 401)
}

// registerDirect registers a client straight through the store, as the
// admin API would store it, for servers that have no root secret.
func registerDirect(t *testing.T, s *ts.Server, id, body string) {
	t.Helper()
	c, err := authserver.ParseClientFor(id, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	doc, hash, err := c.StorageForm()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store().PutClient(context.Background(), store.ClientRecord{ID: id, Body: doc, SecretHash: hash}); err != nil {
		t.Fatal(err)
	}
}

// TestAdminWithoutRootSecretRefusesClients: without --root-secret a
// registered client with a valid access token or valid HTTP Basic
// credentials gets 401 (not 403) from the admin API, the admin operation
// $reindex and /debug/pprof (CONTRACT.md, --root-secret).
func TestAdminWithoutRootSecretRefusesClients(t *testing.T) {
	s := ts.Start(t, testdb.SQLiteURL(t), func(c *app.Config) { c.RootSecret = "" })
	key, err := client.GenerateKey("ES384", 0)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	registerDirect(t, s, "svc", `{"active":true,"scope":["system/*.rs"],"jwks":`+string(jwks)+`,
	  "grant_types":["client_credentials","basic"],"secret":"svc-secret-value"}`)
	tr := token(t, s, key, "svc", "system/*.rs")
	valid := map[string]string{
		"bearer": bearer(tr.AccessToken),
		"basic":  "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:svc-secret-value")),
	}
	for name, auth := range valid {
		// The credentials are good: the FHIR API knows the client (403 for
		// want of a policy, not 401).
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/x", Auth: auth}).Expect(t, 403)
		for _, r := range []ts.Req{
			{Method: "GET", Path: "/Client"},
			{Method: "GET", Path: "/Client/svc"},
			{Method: "PUT", Path: "/Client/other", Body: `{"active":true}`},
			{Method: "DELETE", Path: "/Client/svc"},
			{Method: "GET", Path: "/AccessPolicy"},
			{Method: "PUT", Path: "/AccessPolicy/p", Body: `{"engine":"allow"}`},
			{Method: "GET", Path: "/fhir/$reindex"},
			{Method: "POST", Path: "/fhir/$reindex"},
			{Method: "GET", Path: "/debug/pprof/"},
			{Method: "GET", Path: "/debug/pprof/cmdline"},
		} {
			t.Run(name+" "+r.Method+" "+r.Path, func(t *testing.T) {
				r.Auth = auth
				d := s.Do(r).Expect(t, 401).Outcome(t)
				if !strings.Contains(d, "root-secret") {
					t.Fatalf("diagnostics should say how to enable the admin API: %q", d)
				}
			})
		}
	}
	if _, err := s.Store().GetClient(context.Background(), "svc"); err != nil {
		t.Fatalf("the client is gone after the refused DELETE: %v", err)
	}
}
