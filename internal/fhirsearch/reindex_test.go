package fhirsearch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirsearch"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// clientToken registers a SMART backend client with the scope ceiling
// given and an allow-everything AccessPolicy, and returns the
// Authorization value of an access token it obtained for scope.
func clientToken(t *testing.T, s *ts.Server, id, scope string) string {
	t.Helper()
	key, err := client.GenerateKey("RS384", 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	ceiling, _ := json.Marshal([]string{scope})
	s.Do(ts.Req{Method: "PUT", Path: "/Client/" + id, Body: fmt.Sprintf(`{"type":"bulk-api-client","active":true,
	  "auth":{"client_credentials":{"client_assertion_types":["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
	    "access_token_expiration":300,"token_format":"jwt"}},
	  "scope":%s,"jwks":%s,"grant_types":["client_credentials"]}`, ceiling, jwks)}).Expect(t, 201)
	s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/" + id + "-allow",
		Body: `{"engine":"allow","link":[{"resourceType":"Client","id":"` + id + `"}]}`}).Expect(t, 201)
	a, err := client.Assertion{Key: key, ClientID: id, TokenURL: s.URL + "/auth/token"}.Sign(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := client.RequestToken(context.Background(), http.DefaultClient, s.URL+"/auth/token", a, scope)
	if err != nil {
		t.Fatalf("token for %s: %v", id, err)
	}
	return "Bearer " + tr.AccessToken
}

// TestReindexRootOnly: $reindex rebuilds the index of every resource, an
// admin task: a client with a valid token and an allow-everything policy
// is still refused with 403 and an OperationOutcome, on GET and POST,
// while root gets through.
func TestReindexRootOnly(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		auth := clientToken(t, s, "wide", "system/*.cruds")
		// The token works for the FHIR API, so the refusal below is $reindex's.
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/a", Auth: auth}).Expect(t, 200)
		for _, r := range []ts.Req{
			{Method: "GET", Path: "/fhir/$reindex", Auth: auth},
			{Method: "POST", Path: "/fhir/$reindex", Auth: auth},
			{Method: "POST", Path: "/fhir/$reindex?_type=Patient", Auth: auth},
		} {
			// The server closes $reindex like the admin API (httpapi's
			// RootOnly), before the operation's own check (below).
			resp := s.Do(r).Expect(t, 403)
			if d := resp.Outcome(t); d != "only root may use the admin API" && d != "$reindex is for the root client only" {
				t.Errorf("%s %s: diagnostics %q", r.Method, r.Path, d)
			}
		}
		res := s.Do(ts.Req{Method: "POST", Path: "/fhir/$reindex?_type=Patient"}).Expect(t, 200).JSON(t)
		if res["resourceType"] != "Parameters" || !containsParam(res, "type", "Patient") {
			t.Fatalf("root POST $reindex: %v", res)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/$reindex"}).Expect(t, 200)
	})
}

func containsParam(params map[string]any, name, value string) bool {
	for _, p := range asList(params["parameter"]) {
		pm := p.(map[string]any)
		if pm["name"] == name && pm["valueString"] == value {
			return true
		}
	}
	return false
}

// TestReindexHandlerRefuses: the operation checks the caller itself, so it
// stays root-only whatever route or middleware mounts it: anonymous is
// 401, any other client 403, each with an OperationOutcome.
func TestReindexHandlerRefuses(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		op := fhirsearch.ReindexOperation(engineStore(t, newURL))
		wide := &authz.Principal{ClientID: "wide", Method: "bearer", Scope: "system/*.cruds"}
		for _, c := range []struct {
			name   string
			p      *authz.Principal
			method string
			status int
			diag   string
		}{
			{"anonymous", nil, "GET", 401, "authentication required"},
			{"client GET", wide, "GET", 403, "$reindex is for the root client only"},
			{"client POST", wide, "POST", 403, "$reindex is for the root client only"},
			{"root GET", &authz.Principal{ClientID: "root", Root: true}, "GET", 200, ""},
			{"root POST", &authz.Principal{ClientID: "root", Root: true}, "POST", 200, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := httptest.NewRequest(c.method, "/fhir/$reindex", nil)
				if c.p != nil {
					r = r.WithContext(authz.WithPrincipal(r.Context(), c.p))
				}
				w := httptest.NewRecorder()
				op.Handler(w, r, "", "")
				var body struct {
					ResourceType string
					Issue        []struct{ Diagnostics string }
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Fatalf("body: %v\n%s", err, w.Body)
				}
				if w.Code != c.status {
					t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
				}
				if c.status == 200 {
					if body.ResourceType != "Parameters" {
						t.Fatalf("root: %s", w.Body)
					}
					return
				}
				if body.ResourceType != "OperationOutcome" || len(body.Issue) == 0 || body.Issue[0].Diagnostics != c.diag {
					t.Fatalf("refusal body %s, want diagnostics %q", w.Body, c.diag)
				}
			})
		}
	})
}
