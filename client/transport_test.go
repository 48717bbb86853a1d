package client_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/smarttest"
)

func TestTransportRetries401WithNewToken(t *testing.T) {
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{})
	srv.AddResources("Patient", `{"resourceType":"Patient","id":"p1"}`)
	hc := newSource(t, srv, key, nil).Client()

	get := func() int {
		resp, err := hc.Get(srv.FHIRBaseURL() + "/Patient")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := get(); code != 200 {
		t.Fatalf("status %d", code)
	}
	srv.RevokeTokens() // as if the token had expired early
	if code := get(); code != 200 {
		t.Fatalf("after revocation: status %d, want 200 through a retry", code)
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}

	// A body is replayed through GetBody.
	srv.RevokeTokens()
	body := `{"resourceType":"Patient","name":[{"family":"Replay"}]}`
	resp, err := hc.Post(srv.FHIRBaseURL()+"/Patient", "application/fhir+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST after revocation: %d", resp.StatusCode)
	}
	if got := srv.Received(); len(got) != 1 || string(got[0]) != body {
		t.Errorf("server received %q, want the body once", got)
	}
}

func TestTransportDoesNotReplayOneShotBody(t *testing.T) {
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{})
	ts := newSource(t, srv, key, nil)
	hc := ts.Client()
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	srv.RevokeTokens()
	req, _ := http.NewRequest(http.MethodPost, srv.FHIRBaseURL()+"/Patient", io.NopCloser(strings.NewReader(`{}`)))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || srv.TokenRequests() != 1 {
		t.Errorf("status %d after %d token requests; a body without GetBody cannot be sent twice", resp.StatusCode, srv.TokenRequests())
	}
}

func TestTransportManyConcurrent401sRefreshOnce(t *testing.T) {
	key := testKey(t, client.ES256)
	srv := newServer(t, key, smarttest.Options{})
	srv.AddResources("Patient", `{"resourceType":"Patient","id":"p1"}`)
	hc := newSource(t, srv, key, nil).Client()
	resp, _ := hc.Get(srv.FHIRBaseURL() + "/Patient")
	resp.Body.Close()
	srv.RevokeTokens()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			resp, err := hc.Get(srv.FHIRBaseURL() + "/Patient")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests for 50 concurrent 401s, want 2 in all", n)
	}
}

func TestTransportKeepsTokenOnItsOrigin(t *testing.T) {
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{})
	var mu sync.Mutex
	seen := map[string]string{}
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host+r.URL.Path] = r.Header.Get("Authorization")
		mu.Unlock()
	}
	other := httptest.NewServer(http.HandlerFunc(record))
	defer other.Close()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(w, r)
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/file", http.StatusTemporaryRedirect)
		case "/home":
			http.Redirect(w, r, "/here", http.StatusFound)
		}
	}))
	defer origin.Close()
	hc := newSource(t, srv, key, nil).Client()
	for _, p := range []string{"/away", "/home"} {
		resp, err := hc.Get(origin.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	o, x := strings.TrimPrefix(origin.URL, "http://"), strings.TrimPrefix(other.URL, "http://")
	if !strings.HasPrefix(seen[o+"/away"], "Bearer ") || !strings.HasPrefix(seen[o+"/here"], "Bearer ") {
		t.Errorf("same-origin requests lack the token: %v", seen)
	}
	if got := seen[x+"/file"]; got != "" {
		t.Errorf("the token leaked to another origin through a redirect: %q", got)
	}
}

func TestTransportTokenFailure(t *testing.T) {
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{})
	ts := newSource(t, srv, key, func(c *client.Config) { c.ClientID = "nobody" })
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.FHIRBaseURL()+"/Patient", bytes.NewReader([]byte(`{}`)))
	_, err := ts.Client().Do(req)
	if err == nil || !strings.Contains(err.Error(), `invalid_client: unknown client "nobody"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestTransportDropsRejectedTokenEvenWithoutRetry(t *testing.T) {
	key := testKey(t, client.ES384)
	srv := newServer(t, key, smarttest.Options{})
	srv.AddResources("Patient", `{"resourceType":"Patient","id":"p1"}`)
	hc := newSource(t, srv, key, nil).Client()
	resp, _ := hc.Get(srv.FHIRBaseURL() + "/Patient")
	resp.Body.Close()
	srv.RevokeTokens()
	req, _ := http.NewRequest(http.MethodPost, srv.FHIRBaseURL()+"/Patient", io.NopCloser(strings.NewReader(`{}`)))
	resp, _ = hc.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.FHIRBaseURL()+"/Patient", io.NopCloser(strings.NewReader(`{}`)))
	resp, _ = hc.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 201 || srv.TokenRequests() != 2 {
		t.Errorf("next request: status %d after %d token requests; the rejected token was kept", resp.StatusCode, srv.TokenRequests())
	}
}
