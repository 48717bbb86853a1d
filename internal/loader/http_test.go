package loader_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// register registers a backend client with an inline JWKS, the scope
// ceiling given, tokens of lifetime seconds and an allow policy.
func register(t testing.TB, s *ts.Server, id string, ceiling []string, lifetime int) *client.Key {
	t.Helper()
	key, err := client.GenerateKey(client.ES384, 0)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	scope, _ := json.Marshal(ceiling)
	body := fmt.Sprintf(`{"type":"bulk-api-client","active":true,
	  "auth":{"client_credentials":{"client_assertion_types":["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
	    "access_token_expiration":%d,"token_format":"jwt"}},
	  "scope":%s,"jwks":%s,"grant_types":["client_credentials"]}`, lifetime, scope, jwks)
	s.Do(ts.Req{Method: "PUT", Path: "/Client/" + id, Body: body}).Expect(t, 201)
	s.Do(ts.Req{Method: "PUT", Path: "/AccessPolicy/" + id + "-allow",
		Body: `{"engine":"allow","link":[{"resourceType":"Client","id":"` + id + `"}]}`}).Expect(t, 201)
	return key
}

// TestToServer loads over the FHIR API of a real server with a client whose
// tokens live one second, and a token source whose clock stands still, so
// that it keeps using a token the server has expired: the load goes on
// through the 401 with a new token.
func TestToServer(t *testing.T) {
	for _, bundle := range []string{loader.Transaction, loader.Batch} {
		t.Run(bundle, func(t *testing.T) { testToServer(t, bundle) })
	}
}

func testToServer(t *testing.T, bundle string) {
	{
		testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
			t.Parallel()
			s := ts.Start(t, newURL(t))
			key := register(t, s, "loader", []string{"system/*.cruds"}, 1)
			frozen := time.Now()
			src, err := client.NewTokenSource(client.Config{ClientID: "loader", Key: key, Scopes: []string{"system/*.cu"},
				FHIRBaseURL: s.URL + "/fhir", Now: func() time.Time { return frozen }})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			obs := strings.Builder{}
			for i := range 300 {
				fmt.Fprintf(&obs, `{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p-%d"}}`+"\n", i, i%40)
			}
			files := []string{
				writeFile(t, dir, "Patient.ndjson.gz", patients("p", 40)+`{"resourceType":"Patient","id":"p-1","active":true}`+"\n", true),
				writeFile(t, dir, "Observation.ndjson", obs.String(), false),
			}
			var once sync.Once
			var pl progressLog
			opts := pl.opts(loader.Options{BatchSize: 30, Parallel: 3})
			report := opts.OnProgress
			opts.OnProgress = func(p loader.Progress) {
				report(p)
				// Outlive the first token.
				once.Do(func() { time.Sleep(1500 * time.Millisecond) })
			}
			srv := loader.Server{BaseURL: s.URL + "/fhir/", HTTP: src.Client(), Bundle: bundle}
			res, err := loader.ToServer(context.Background(), srv, sources(t, files...), opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Resources != 341 || res.Files[0].Resources != 41 || res.Files[1].Resources != 300 {
				t.Fatalf("result %+v", res)
			}
			var total int64
			for _, f := range res.Files {
				total += f.Bytes
			}
			pl.check(t, res, total)
			if n := src.Requests(); n < 2 {
				t.Fatalf("%d token requests: the expired token was not replaced", n)
			}
			if !strings.Contains(s.Logs.String(), `"status":401`) {
				t.Fatal("the server never answered 401: the test did not outlive the token")
			}
			live, versions := countLive(t, s.Store())
			if live["Patient"] != 40 || live["Observation"] != 300 || versions != 341 {
				t.Fatalf("stored %v, %d versions", live, versions)
			}
			// The later line of p-1 won, though it came in another Bundle.
			r := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p-1"}).Expect(t, 200)
			if m := r.JSON(t); m["active"] != true || m["meta"].(map[string]any)["versionId"] != "2" {
				t.Fatalf("p-1 = %s", r.Body)
			}
		})
	}
}

// TestToServerRefused: a token without write scopes is a 403 for the
// whole load, with the server's explanation.
func TestToServerRefused(t *testing.T) {
	s := ts.Start(t, testdb.SQLiteURL(t))
	key := register(t, s, "reader", []string{"system/*.rs"}, 300)
	src, err := client.NewTokenSource(client.Config{ClientID: "reader", Key: key, Scopes: []string{"system/*.rs"}, FHIRBaseURL: s.URL + "/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, t.TempDir(), "p.ndjson", patients("p", 5), false)
	res, err := loader.ToServer(context.Background(), loader.Server{BaseURL: s.URL + "/fhir", HTTP: src.Client()}, sources(t, f), loader.Options{})
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 403 || !strings.Contains(he.Detail(), "system/Patient.u") {
		t.Fatalf("error %v", err)
	}
	if res.Resources != 0 {
		t.Fatalf("result %+v", res)
	}
}

// fakeFHIR is a FHIR server seam for what fhirgate does not do on its own:
// refusing single entries of valid resources, and failing for a while.
type fakeFHIR struct {
	mu       sync.Mutex
	stored   map[string]bool
	posts    atomic.Int32
	failures atomic.Int32 // answer 503 this many times first
}

func (f *fakeFHIR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.posts.Add(1)
	if f.failures.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "0")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var b struct {
		Type  string `json:"type"`
		Entry []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
			Request  struct{ Method, URL string }
		} `json:"entry"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || r.Header.Get("Content-Type") != "application/fhir+json" {
		http.Error(w, "bad bundle", 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	var out []string
	for i, e := range b.Entry {
		bad := strings.Contains(e.Request.URL, "/bad")
		if e.Request.Method != "PUT" || !strings.HasSuffix(e.FullURL, "/fhir/"+e.Request.URL) {
			bad = true
		}
		if bad && b.Type == "transaction" {
			w.WriteHeader(422)
			fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"entry %d (PUT %s): not today"}]}`, i, e.Request.URL)
			return
		}
		if bad {
			out = append(out, `{"response":{"status":"422 Unprocessable Entity","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"not today"}]}}}`)
			continue
		}
		out = append(out, `{"response":{"status":"201 Created"}}`)
	}
	for _, e := range b.Entry {
		if !strings.Contains(e.Request.URL, "/bad") {
			f.stored[e.Request.URL] = true
		}
	}
	fmt.Fprintf(w, `{"resourceType":"Bundle","type":"%s-response","entry":[%s]}`, b.Type, strings.Join(out, ","))
}

func TestToServerEntryRefusals(t *testing.T) {
	content := patients("p", 10) + `{"resourceType":"Patient","id":"bad1"}` + "\n" + patients("q", 10) +
		`{"resourceType":"Patient","id":"bad2"}` + "\n"
	for _, bundle := range []string{loader.Transaction, loader.Batch} {
		t.Run(bundle, func(t *testing.T) {
			fake := &fakeFHIR{stored: map[string]bool{}}
			hs := httptest.NewServer(fake)
			defer hs.Close()
			f := writeFile(t, t.TempDir(), "p.ndjson", content, false)
			srv := loader.Server{BaseURL: hs.URL + "/fhir", Bundle: bundle}

			_, err := loader.ToServer(context.Background(), srv, sources(t, f), loader.Options{BatchSize: 8, Parallel: 1})
			var le *loader.LineError
			want := f + ":11: the server refused it (422): entry 2 (PUT Patient/bad1): not today"
			if bundle == loader.Batch {
				want = f + ":11: the server refused it (422 Unprocessable Entity): not today"
			}
			if !errors.As(err, &le) || err.Error() != want {
				t.Fatalf("error %v\nwant  %s", err, want)
			}

			fake.stored = map[string]bool{}
			fake.failures.Store(2)
			var pl progressLog
			res, err := loader.ToServer(context.Background(), srv, sources(t, f), pl.opts(loader.Options{BatchSize: 8, SkipInvalid: true, Parallel: 1}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Resources != 20 || res.Invalid != 2 || len(fake.stored) != 20 {
				t.Fatalf("result %+v, stored %d", res, len(fake.stored))
			}
			if len(pl.invalid) != 2 || !strings.HasPrefix(pl.invalid[0], f+":11: ") || !strings.HasPrefix(pl.invalid[1], f+":22: ") {
				t.Fatalf("invalid %q", pl.invalid)
			}
			pl.check(t, res, res.Files[0].Bytes)
		})
	}
}

// TestToServerGivesUp: a server that stays unavailable fails the load
// after the configured attempts.
func TestToServerGivesUp(t *testing.T) {
	fake := &fakeFHIR{stored: map[string]bool{}}
	fake.failures.Store(100)
	hs := httptest.NewServer(fake)
	defer hs.Close()
	f := writeFile(t, t.TempDir(), "p.ndjson", patients("p", 3), false)
	_, err := loader.ToServer(context.Background(), loader.Server{BaseURL: hs.URL + "/fhir", Attempts: 3}, sources(t, f), loader.Options{})
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 503 || fake.posts.Load() != 3 {
		t.Fatalf("error %v after %d posts", err, fake.posts.Load())
	}
}
