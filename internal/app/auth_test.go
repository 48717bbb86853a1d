package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
	"github.com/fhirgate/fhirgate/smart"
)

// backendClient registers a SMART backend client with an inline JWKS, the
// scope ceiling given and (unless noPolicy) an allow policy.
func backendClient(t *testing.T, s *ts.Server, id string, ceiling []string, noPolicy bool) *client.Key {
	t.Helper()
	key, err := client.GenerateKey("RS384", 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	scope, _ := json.Marshal(ceiling)
	body := fmt.Sprintf(`{"type":"bulk-api-client","active":true,
	  "auth":{"client_credentials":{"client_assertion_types":["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
	    "access_token_expiration":300,"token_format":"jwt"}},
	  "scope":%s,"jwks":%s,"grant_types":["client_credentials"]}`, scope, jwks)
	s.Do(ts.Req{Method: "PUT", Path: "/Client/" + id, Body: body}).Expect(t, 201)
	if !noPolicy {
		s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/" + id + "-allow",
			Body: `{"engine":"allow","link":[{"resourceType":"Client","id":"` + id + `"}]}`}).Expect(t, 201)
	}
	return key
}

func assertion(t *testing.T, s *ts.Server, key *client.Key, id string) string {
	t.Helper()
	a, err := client.Assertion{Key: key, ClientID: id, TokenURL: s.URL + "/auth/token"}.Sign(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func token(t *testing.T, s *ts.Server, key *client.Key, id, scope string) *client.TokenResponse {
	t.Helper()
	tr, err := client.RequestToken(context.Background(), http.DefaultClient, s.URL+"/auth/token", assertion(t, s, key, id), scope)
	if err != nil {
		t.Fatalf("token for %s (%s): %v", id, scope, err)
	}
	return tr
}

func bearer(tok string) string { return "Bearer " + tok }

func postForm(t *testing.T, u string, form url.Values, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp, m
}

// TestBackendServicesFlow is the seed's flow: register, token, call the API.
func TestBackendServicesFlow(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/o1", Body: `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`}).Expect(t, 201)
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
		key := backendClient(t, s, "bulk", []string{"system/*.read"}, false)
		tr := token(t, s, key, "bulk", "system/*.read")
		if !strings.EqualFold(tr.TokenType, "bearer") || tr.ExpiresIn != 300 || tr.Scope != "system/*.read" || tr.AccessToken == "" {
			t.Fatalf("token response %+v", tr.TokenResponse)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1", Auth: bearer(tr.AccessToken)}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1/_history", Auth: bearer(tr.AccessToken)}).Expect(t, 200)
		d := s.Do(ts.Req{Method: "POST", Path: "/fhir/Observation", Auth: bearer(tr.AccessToken),
			Body: `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`}).Expect(t, 403).Outcome(t)
		if !strings.Contains(d, "system/Observation.c") {
			t.Fatalf("403 should name the scope needed: %q", d)
		}
		// The ceiling cuts a wider request down; v2 scopes work too.
		narrow := token(t, s, key, "bulk", "system/Patient.rs system/Observation.cruds")
		if narrow.Scope != "system/Patient.rs system/Observation.rs" {
			t.Fatalf("granted %q", narrow.Scope)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(narrow.AccessToken)}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/o1", Auth: bearer(narrow.AccessToken)}).Expect(t, 403)
		pOnly := token(t, s, key, "bulk", "system/Patient.r")
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1", Auth: bearer(pOnly.AccessToken)}).Expect(t, 403)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/_history", Auth: bearer(pOnly.AccessToken)}).Expect(t, 403) // needs s
		// Each batch entry is checked on its own.
		es := entries(t, s.Do(ts.Req{Method: "POST", Path: "/fhir", Auth: bearer(pOnly.AccessToken), Body: `{"resourceType":"Bundle","type":"batch","entry":[
		  {"request":{"method":"GET","url":"Patient/p1"}},{"request":{"method":"GET","url":"Observation/o1"}}]}`}).Expect(t, 200).JSON(t))
		if !strings.HasPrefix(status(es[0]), "200") || !strings.HasPrefix(status(es[1]), "403") {
			t.Fatalf("batch entries %s / %s", status(es[0]), status(es[1]))
		}
		s.Do(ts.Req{Method: "POST", Path: "/fhir", Auth: bearer(pOnly.AccessToken), Body: `{"resourceType":"Bundle","type":"transaction","entry":[
		  {"request":{"method":"GET","url":"Patient/p1"}},{"request":{"method":"GET","url":"Observation/o1"}}]}`}).Expect(t, 403)
		// Admin stays root-only.
		s.Do(ts.Req{Method: "GET", Path: "/Client", Auth: bearer(tr.AccessToken)}).Expect(t, 403)
		// Bad, tampered and missing tokens.
		r := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: "Bearer not-a-token"}).Expect(t, 401)
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
		}
		r.Outcome(t)
		tampered := tr.AccessToken[:len(tr.AccessToken)-4] + "AAAA"
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tampered)}).Expect(t, 401)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: "none"}).Expect(t, 401)
		if logs := s.Logs.String(); strings.Contains(logs, tr.AccessToken) || strings.Contains(logs, narrow.AccessToken) {
			t.Fatal("an access token reached the log")
		}
	})
}

// TestDefaultDeny: a client that no policy allows gets 403 whatever its scopes.
func TestDefaultDeny(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
		key := backendClient(t, s, "nopolicy", []string{"system/*.cruds"}, true)
		tr := token(t, s, key, "nopolicy", "system/*.cruds")
		d := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 403).Outcome(t)
		if !strings.Contains(d, "AccessPolicy") {
			t.Fatalf("403 should say a policy is missing: %q", d)
		}
		// A global policy (no link) applies to every client; matcho narrows.
		s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/read-patients",
			Body: `{"engine":"matcho","matcho":{"request-method":"get","params":{"resource/type":"Patient"}}}`}).Expect(t, 201)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 403)
		// complex: and of two rules.
		s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/read-patients", Body: `{"engine":"complex","and":[
		   {"engine":"matcho","matcho":{"client":{"id":"nopolicy"}}},
		   {"engine":"matcho","matcho":{"request-method":"delete"}}]}`}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 403)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 204)
		s.Do(ts.Req{Method: "DELETE", Path: "/AccessPolicy/read-patients"}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 403)
	})
}

// TestTokenRefusals: the exact OAuth error of each refusal at the HTTP level
// (the authserver package tables cover every reason transport-free).
func TestTokenRefusals(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
		other, _ := client.GenerateKey("ES384", 0)
		tokenURL := s.URL + "/auth/token"
		good := func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
				"client_assertion": {assertion(t, s, key, "c1")}, "scope": {"system/*.rs"}}
		}
		with := func(k, v string) url.Values { f := good(); f.Set(k, v); return f }
		signedBy := func(k *client.Key, id, aud string) string {
			a, _ := client.Assertion{Key: k, ClientID: id, TokenURL: aud}.Sign(time.Now())
			return a
		}
		replayed := good()
		postForm(t, tokenURL, replayed, nil)
		for _, tc := range []struct {
			name   string
			form   url.Values
			status int
			code   string
		}{
			{"wrong grant type", with("grant_type", "password"), 400, "unsupported_grant_type"},
			{"wrong assertion type", with("client_assertion_type", "urn:x"), 401, "invalid_client"},
			{"no assertion", with("client_assertion", ""), 401, "invalid_client"},
			{"malformed assertion", with("client_assertion", "a.b.c"), 401, "invalid_client"},
			{"unknown client", with("client_assertion", signedBy(key, "nobody", tokenURL)), 401, "invalid_client"},
			{"wrong key", with("client_assertion", signedBy(other.WithKID(key.KID()), "c1", tokenURL)), 401, "invalid_client"},
			{"wrong aud", with("client_assertion", signedBy(key, "c1", s.URL+"/other")), 401, "invalid_client"},
			{"replayed jti", replayed, 401, "invalid_client"},
			{"client_id mismatch", with("client_id", "c2"), 401, "invalid_client"},
			{"scope outside ceiling", with("scope", "system/Patient.c"), 400, "invalid_scope"},
			{"user scope", with("scope", "user/*.read"), 400, "invalid_scope"},
			{"unknown type", with("scope", "system/Spaceship.read"), 400, "invalid_scope"},
			{"empty scope", with("scope", ""), 400, "invalid_scope"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := postForm(t, tokenURL, tc.form, nil)
				if resp.StatusCode != tc.status || body["error"] != tc.code {
					t.Fatalf("%d %v, want %d %s", resp.StatusCode, body, tc.status, tc.code)
				}
				if d, _ := body["error_description"].(string); d == "" {
					t.Fatal("no error_description")
				}
				if resp.Header.Get("Cache-Control") != "no-store" {
					t.Fatal("error without Cache-Control: no-store")
				}
			})
		}
		req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, _ := http.DefaultClient.Do(req)
		if resp.StatusCode != 400 {
			t.Fatalf("JSON body: %d", resp.StatusCode)
		}
		resp, _ = http.Get(tokenURL)
		if resp.StatusCode != 405 {
			t.Fatalf("GET /auth/token: %d", resp.StatusCode)
		}
		big := good()
		big.Set("client_assertion", strings.Repeat("a", 100<<10))
		if resp, _ := postForm(t, tokenURL, big, nil); resp.StatusCode != 413 {
			t.Fatalf("oversized request: %d", resp.StatusCode)
		}
		if strings.Contains(s.Logs.String(), replayed.Get("client_assertion")) {
			t.Fatal("an assertion reached the log")
		}
		if !strings.Contains(s.Logs.String(), `"decision":"refused"`) && !strings.Contains(s.Logs.String(), `"decision":"deny"`) {
			t.Logf("logs: %s", s.Logs.String())
			t.Fatal("token refusals are not audited")
		}
	})
}

// TestParallelReplay: 20 parallel requests with one assertion give exactly
// one token.
func TestParallelReplay(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
			"client_assertion": {assertion(t, s, key, "c1")}, "scope": {"system/*.rs"}}
		var wg sync.WaitGroup
		codes := make(chan int, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := postForm(t, s.URL+"/auth/token", form, nil)
				codes <- resp.StatusCode
			}()
		}
		wg.Wait()
		close(codes)
		ok := 0
		for c := range codes {
			if c == 200 {
				ok++
			} else if c != 401 {
				t.Fatalf("status %d", c)
			}
		}
		if ok != 1 {
			t.Fatalf("%d tokens from one assertion, want 1", ok)
		}
	})
}

// TestDeactivationAndDeletion: active:false or deleting a client stops its
// tokens at once.
func TestDeactivationAndDeletion(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
		key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
		tr := token(t, s, key, "c1", "system/*.rs")
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 200)
		c := s.Do(ts.Req{Method: "GET", Path: "/Client/c1"}).Expect(t, 200).JSON(t)
		c["active"] = false
		b, _ := json.Marshal(c)
		s.Do(ts.Req{Method: "PUT", Path: "/Client/c1", Body: string(b)}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 401)
		if _, err := client.RequestToken(context.Background(), http.DefaultClient, s.URL+"/auth/token", assertion(t, s, key, "c1"), "system/*.rs"); err == nil {
			t.Fatal("an inactive client got a token")
		}
		c["active"] = true
		b, _ = json.Marshal(c)
		s.Do(ts.Req{Method: "PUT", Path: "/Client/c1", Body: string(b)}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/Client/c1"}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 401)
	})
}

// TestSecrets: client_secret_basic and client_secret_post at the token
// endpoint, and the Aidbox basic grant straight on /fhir (seed
// aidbox-client-secret-basic.txt).
func TestSecrets(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/o1", Body: `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`}).Expect(t, 201)
		s.Do(ts.Req{Method: "PUT", Path: "/Client/client-confidential-symmetric", Body: `{"id":"client-confidential-symmetric","secret":"secret","grant_types":["basic"]}`}).Expect(t, 201)
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("client-confidential-symmetric:secret"))
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1", Auth: basic}).Expect(t, 403) // no policy yet
		s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/client-confidential-symmetric-allow",
			Body: `{"id":"client-confidential-symmetric-allow","engine":"allow","link":[{"resourceType":"Client","id":"client-confidential-symmetric"}]}`}).Expect(t, 201)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1", Auth: basic}).Expect(t, 200)
		wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("client-confidential-symmetric:nope"))
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1", Auth: wrong}).Expect(t, 401).Outcome(t)

		s.Do(ts.Req{Method: "PUT", Path: "/Client/svc", Body: `{"secret":"s3cr3t-value","grant_types":["client_credentials"],"scope":["system/*.rs"]}`}).Expect(t, 201)
		s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/svc", Body: `{"engine":"allow","link":[{"resourceType":"Client","id":"svc"}]}`}).Expect(t, 201)
		resp, body := postForm(t, s.URL+"/auth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}},
			map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:s3cr3t-value"))})
		if resp.StatusCode != 200 || body["access_token"] == nil {
			t.Fatalf("client_secret_basic: %d %v", resp.StatusCode, body)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/o1", Auth: bearer(body["access_token"].(string))}).Expect(t, 200)
		resp, body = postForm(t, s.URL+"/auth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
			"client_id": {"svc"}, "client_secret": {"s3cr3t-value"}}, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("client_secret_post: %d %v", resp.StatusCode, body)
		}
		resp, body = postForm(t, s.URL+"/auth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}},
			map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:wrong"))})
		if resp.StatusCode != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("wrong secret: %d %v %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
		if logs := s.Logs.String(); strings.Contains(logs, "s3cr3t-value") || strings.Contains(logs, `"secret"`) {
			t.Fatal("a secret reached the log")
		}
	})
}

func TestIntrospectionAndDiscovery(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
		tr := token(t, s, key, "c1", "system/Patient.rs")
		intro := func(tok string, hdr map[string]string) (int, map[string]any) {
			resp, body := postForm(t, s.URL+"/auth/introspect", url.Values{"token": {tok}}, hdr)
			return resp.StatusCode, body
		}
		rootAuth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("root:"+ts.RootSecret))}
		code, body := intro(tr.AccessToken, rootAuth)
		if code != 200 || body["active"] != true || body["client_id"] != "c1" || body["scope"] != "system/Patient.rs" || body["exp"] == nil {
			t.Fatalf("introspect: %d %v", code, body)
		}
		code, body = intro(tr.AccessToken, map[string]string{"Authorization": bearer(tr.AccessToken)})
		if code != 200 || body["active"] != true {
			t.Fatalf("introspect with a bearer token: %d %v", code, body)
		}
		code, body = intro("garbage", rootAuth)
		if code != 200 || body["active"] != false || len(body) != 1 {
			t.Fatalf("inactive: %d %v", code, body)
		}
		if code, _ = intro(tr.AccessToken, nil); code != 401 {
			t.Fatalf("unauthenticated introspection: %d", code)
		}
		for _, path := range []string{"/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"} {
			r := s.Do(ts.Req{Method: "GET", Path: path, Auth: "none", Header: map[string]string{"Accept": "text/html"}}).Expect(t, 200)
			var cfg smart.Configuration
			if err := json.Unmarshal(r.Body, &cfg); err != nil || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: %v %s", path, err, r.Body)
			}
			must := strings.Join(cfg.Capabilities, ",") + "|" + strings.Join(cfg.TokenEndpointAuthMethodsSupported, ",") + "|" +
				strings.Join(cfg.GrantTypesSupported, ",") + "|" + strings.Join(cfg.CodeChallengeMethodsSupported, ",")
			for _, want := range []string{"client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2",
				"private_key_jwt", "client_secret_basic", "client_credentials", "S256"} {
				if !strings.Contains(must, want) {
					t.Fatalf("%s lacks %s", path, want)
				}
			}
			if cfg.TokenEndpoint != s.URL+"/auth/token" || cfg.IntrospectionEndpoint != s.URL+"/auth/introspect" ||
				cfg.JWKSURI != s.URL+"/.well-known/jwks.json" || len(cfg.ScopesSupported) == 0 || len(cfg.TokenEndpointAuthSigningAlgValuesSupported) == 0 {
				t.Fatalf("%s: %+v", path, cfg)
			}
		}
		// The access token's kid is in the published JWKS.
		jwks := s.Do(ts.Req{Method: "GET", Path: "/.well-known/jwks.json", Auth: "none"}).Expect(t, 200)
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tr.AccessToken, ".")[0])
		var h struct{ Kid, Alg string }
		json.Unmarshal(hdr, &h)
		if h.Kid == "" || !strings.Contains(string(jwks.Body), `"`+h.Kid+`"`) || strings.Contains(string(jwks.Body), `"d"`) {
			t.Fatalf("token kid %q vs JWKS %s", h.Kid, jwks.Body)
		}
	})
}

// TestJWKSURI: keys from a jwks_uri (loopback, allowed by
// --allow-private-jwks) work, rotate, and are refused without the flag.
func TestJWKSURI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		kp1 := jwkstest.New(t, "RS384", "k1")
		kp2 := jwkstest.New(t, "ES384", "k2")
		srv := jwkstest.NewServer(t, jwkstest.JWKS(t, kp1))
		for _, allow := range []bool{true, false} {
			s := ts.Start(t, newURL(t), func(c *app.Config) { c.AllowPrivateJWKS = allow })
			s.Do(ts.Req{Method: "PUT", Path: "/Client/uri", Body: `{"active":true,"jwks_uri":"` + srv.URL() + `","grant_types":["client_credentials"],"scope":["system/*.rs"]}`}).Expect(t, 201)
			sign := func(kp *jwkstest.KeyPair) string {
				now := time.Now().Unix()
				return kp.Sign(t, map[string]any{"alg": kp.Alg, "kid": kp.KID, "typ": "JWT"},
					map[string]any{"iss": "uri", "sub": "uri", "aud": s.URL + "/auth/token", "exp": now + 120, "iat": now, "jti": fmt.Sprint(time.Now().UnixNano())})
			}
			form := func(a string) url.Values {
				return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
					"client_assertion": {a}, "scope": {"system/*.rs"}}
			}
			resp, body := postForm(t, s.URL+"/auth/token", form(sign(kp1)), nil)
			if !allow {
				if resp.StatusCode != 401 || body["error"] != "invalid_client" {
					t.Fatalf("loopback jwks_uri without --allow-private-jwks: %d %v", resp.StatusCode, body)
				}
				continue
			}
			if resp.StatusCode != 200 {
				t.Fatalf("jwks_uri token: %d %v", resp.StatusCode, body)
			}
			srv.SetBody(jwkstest.JWKS(t, kp1, kp2)) // the client rotates in a new key
			if resp, body := postForm(t, s.URL+"/auth/token", form(sign(kp2)), nil); resp.StatusCode != 200 {
				t.Fatalf("rotated key: %d %v", resp.StatusCode, body)
			}
		}
	})
}

// TestRestartKeepsKeysAndReplay: a token issued before a restart still
// works after it, and an assertion used before it stays used.
func TestRestartKeepsKeysAndReplay(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		dbURL := newURL(t)
		dir := t.TempDir()
		// A fixed public base URL: iss and aud stay the same across the
		// restart although the second server listens on another port.
		cfg := func(c *app.Config) { c.DataDir = dir; c.BaseURL = "http://fhirgate.example" }
		ctx := context.Background()
		s1 := ts.Start(t, dbURL, cfg)
		s1.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
		key := backendClient(t, s1, "c1", []string{"system/*.rs"}, false)
		a, _ := client.Assertion{Key: key, ClientID: "c1", TokenURL: "http://fhirgate.example/auth/token"}.Sign(time.Now())
		tr, err := client.RequestToken(ctx, http.DefaultClient, s1.URL+"/auth/token", a, "system/*.rs")
		if err != nil {
			t.Fatal(err)
		}
		s1.Stop()
		s2 := ts.Start(t, dbURL, cfg)
		s2.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(tr.AccessToken)}).Expect(t, 200)
		_, err = client.RequestToken(context.Background(), http.DefaultClient, s2.URL+"/auth/token", a, "system/*.rs")
		var se *smart.Error
		if !errors.As(err, &se) || se.Code != "invalid_client" {
			t.Fatalf("an assertion replayed after a restart: %v", err)
		}
	})
}
