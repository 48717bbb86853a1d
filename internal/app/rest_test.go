package app_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// eachBackend runs fn against a fresh server on every backend under test.
func eachBackend(t *testing.T, fn func(t *testing.T, s *ts.Server)) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		fn(t, ts.Start(t, newURL(t)))
	})
}

func TestCRUD(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		// create: server-assigned id, meta set, the body's id ignored
		r := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient",
			Body: `{"resourceType":"Patient","id":"ignored","meta":{"versionId":"99"},"name":[{"family":"Chalmers"}]}`}).Expect(t, 201)
		p := r.JSON(t)
		id := p["id"].(string)
		meta := p["meta"].(map[string]any)
		if id == "ignored" || meta["versionId"] != "1" || meta["lastUpdated"] == nil {
			t.Fatalf("created %s", r.Body)
		}
		loc := s.URL + "/fhir/Patient/" + id + "/_history/1"
		if r.Header.Get("Location") != loc || r.Header.Get("ETag") != `W/"1"` || r.Header.Get("Last-Modified") == "" {
			t.Fatalf("headers %v", r.Header)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
			t.Fatalf("content type %q", ct)
		}
		// read and vread
		got := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id}).Expect(t, 200)
		if string(got.Body) != string(r.Body) || got.Header.Get("ETag") != `W/"1"` {
			t.Fatalf("read %s", got.Body)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id, Header: map[string]string{"If-None-Match": `W/"1"`}}).Expect(t, 304)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "/_history/1"}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "/_history/2"}).Expect(t, 404).Outcome(t)
		// update
		u := s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/" + id,
			Body: `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Windsor"}]}`}).Expect(t, 200)
		if u.JSON(t)["meta"].(map[string]any)["versionId"] != "2" || u.Header.Get("ETag") != `W/"2"` {
			t.Fatalf("update %s", u.Body)
		}
		// update as create with a client id
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/client-id-1",
			Body: `{"resourceType":"Patient","id":"client-id-1"}`}).Expect(t, 201)
		// delete, then 410, and history keeps the deletion
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient/" + id}).Expect(t, 204)
		gone := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id}).Expect(t, 410)
		gone.Outcome(t)
		if gone.Header.Get("ETag") != `W/"3"` {
			t.Fatalf("410 ETag %q", gone.Header.Get("ETag"))
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "/_history/3"}).Expect(t, 410)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "/_history/1"}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient/" + id}).Expect(t, 204)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient/never-existed"}).Expect(t, 204)
		h := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "/_history"}).Expect(t, 200).JSON(t)
		entries := h["entry"].([]any)
		if h["type"] != "history" || len(entries) != 3 {
			t.Fatalf("history %v", h)
		}
		del := entries[0].(map[string]any)
		if del["request"].(map[string]any)["method"] != "DELETE" || del["resource"] != nil ||
			!strings.HasPrefix(del["response"].(map[string]any)["status"].(string), "204") {
			t.Fatalf("deletion entry %v", del)
		}
		// re-create after delete continues the versions
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/" + id,
			Body: `{"resourceType":"Patient","id":"` + id + `"}`}).Expect(t, 200)
		if v := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id}).Expect(t, 200).JSON(t)["meta"].(map[string]any)["versionId"]; v != "4" {
			t.Fatalf("version after re-create %v", v)
		}
	})
}

func TestIfMatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		body := `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/o1", Body: body}).Expect(t, 201)
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/o1", Body: body, Header: map[string]string{"If-Match": `W/"1"`}}).Expect(t, 200)
		d := s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/o1", Body: body, Header: map[string]string{"If-Match": `W/"1"`}}).Expect(t, 412).Outcome(t)
		if !strings.Contains(d, "version") {
			t.Fatalf("412 diagnostics %q", d)
		}
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/o1", Body: body, Header: map[string]string{"If-Match": `banana`}}).Expect(t, 400)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/o1", Header: map[string]string{"If-Match": `W/"1"`}}).Expect(t, 412)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/o1", Header: map[string]string{"If-Match": `W/"2"`}}).Expect(t, 204)
	})
}

func TestConditionalCreate(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		body := `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"42"}]}`
		hdr := map[string]string{"If-None-Exist": "identifier=urn:mrn|42"}
		first := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: hdr}).Expect(t, 201).JSON(t)
		second := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: hdr}).Expect(t, 200).JSON(t)
		if first["id"] != second["id"] {
			t.Fatalf("conditional create made a second resource: %v vs %v", first["id"], second["id"])
		}
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: map[string]string{"If-None-Exist": "identifier=42"}}).Expect(t, 200)
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: map[string]string{"If-None-Exist": "_id=" + first["id"].(string)}}).Expect(t, 200)
		// a second resource with the same identifier makes the criteria ambiguous
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body}).Expect(t, 201)
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: hdr}).Expect(t, 412).Outcome(t)
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: map[string]string{"If-None-Exist": "identifier=urn:other|42"}}).Expect(t, 201)
		// concurrent conditional creates create exactly one resource
		var wg sync.WaitGroup
		codes := make(chan int, 10)
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Patient","identifier":[{"system":"urn:c","value":"1"}]}`,
					Header: map[string]string{"If-None-Exist": "identifier=urn:c|1"}})
				codes <- r.StatusCode
			}()
		}
		wg.Wait()
		close(codes)
		created := 0
		for c := range codes {
			if c == 201 {
				created++
			} else if c != 200 {
				t.Fatalf("concurrent conditional create: status %d", c)
			}
		}
		if created != 1 {
			t.Fatalf("%d concurrent conditional creates created, want 1", created)
		}
	})
}

func TestPreferReturn(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		body := `{"resourceType":"Patient"}`
		r := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: map[string]string{"Prefer": "return=minimal"}}).Expect(t, 201)
		if len(r.Body) != 0 || r.Header.Get("Location") == "" {
			t.Fatalf("return=minimal: body %q", r.Body)
		}
		o := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: map[string]string{"Prefer": "return=OperationOutcome"}}).Expect(t, 201)
		if o.JSON(t)["resourceType"] != "OperationOutcome" {
			t.Fatalf("return=OperationOutcome: %s", o.Body)
		}
		rep := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: body, Header: map[string]string{"Prefer": "return=representation"}}).Expect(t, 201)
		if rep.JSON(t)["resourceType"] != "Patient" {
			t.Fatalf("return=representation: %s", rep.Body)
		}
	})
}

func TestFormats(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		r := s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Patient"}`,
			Header: map[string]string{"Content-Type": "application/json", "Accept": "application/json"}}).Expect(t, 201)
		if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Accept: application/json answered %q", ct)
		}
		id := r.JSON(t)["id"].(string)
		p := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "?_pretty=true"}).Expect(t, 200)
		if !strings.Contains(string(p.Body), "\n  \"id\"") {
			t.Fatalf("_pretty=true: %s", p.Body)
		}
		if ct := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "?_format=json"}).Expect(t, 200).Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Fatalf("_format=json: %q", ct)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id + "?_format=xml"}).Expect(t, 406).Outcome(t)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + id, Header: map[string]string{"Accept": "application/fhir+xml"}}).Expect(t, 406)
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Patient"}`,
			Header: map[string]string{"Content-Type": "text/plain"}}).Expect(t, 415).Outcome(t)
	})
}

// TestErrors: every error on /fhir is an OperationOutcome with the right status.
func TestErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
		big := `{"resourceType":"Patient","text":{"div":"` + strings.Repeat("x", 17<<20) + `"}}`
		for _, tc := range []struct {
			name   string
			req    ts.Req
			status int
			diag   string
		}{
			{"malformed JSON", ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":`}, 400, "JSON"},
			{"not an object", ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `[1]`}, 400, "object"},
			{"type mismatch", ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Observation"}`}, 400, "does not match"},
			{"id mismatch", ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p2"}`}, 400, "differs"},
			{"id missing on update", ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient"}`}, 400, "no id"},
			{"invalid id", ts.Req{Method: "GET", Path: "/fhir/Patient/bad_id!"}, 400, "invalid id"},
			{"too long id", ts.Req{Method: "PUT", Path: "/fhir/Patient/" + strings.Repeat("a", 65), Body: `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`}, 400, "invalid id"},
			{"body too large", ts.Req{Method: "POST", Path: "/fhir/Patient", Body: big}, 413, "limit"},
			{"unknown type", ts.Req{Method: "GET", Path: "/fhir/Spaceship/1"}, 404, "unknown resource type"},
			{"unknown type create", ts.Req{Method: "POST", Path: "/fhir/Spaceship", Body: `{"resourceType":"Spaceship"}`}, 404, "unknown resource type"},
			{"unknown", ts.Req{Method: "GET", Path: "/fhir/Patient/nope"}, 404, "not known"},
			{"method not allowed", ts.Req{Method: "PATCH", Path: "/fhir/Patient/p1"}, 405, "not allowed"},
			{"no credentials", ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: "none"}, 401, "authentication"},
			{"wrong root secret", ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: "Basic cm9vdDp3cm9uZw=="}, 401, "invalid"},
			{"unknown scheme", ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: "Digest abc"}, 401, "scheme"},
			{"bad history cursor", ts.Req{Method: "GET", Path: "/fhir/_history?_cursor=zz"}, 400, "_cursor"},
			{"bad _since", ts.Req{Method: "GET", Path: "/fhir/_history?_since=yesterday"}, 400, "_since"},
			{"null member", ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Patient","active":null}`}, 400, "null"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do(tc.req).Expect(t, tc.status)
				if d := r.Outcome(t); !strings.Contains(d, tc.diag) {
					t.Fatalf("diagnostics %q lack %q", d, tc.diag)
				}
				if tc.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without WWW-Authenticate")
				}
			})
		}
	})
}

// TestConcurrentUpdatesHTTP: 40 concurrent updates over HTTP give 41
// distinct versions.
func TestConcurrentUpdatesHTTP(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/hot", Body: `{"resourceType":"Patient","id":"hot"}`}).Expect(t, 201)
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/hot",
					Body: fmt.Sprintf(`{"resourceType":"Patient","id":"hot","name":[{"family":"w%d"}]}`, i)}).Expect(t, 200)
			}(i)
		}
		wg.Wait()
		h := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/hot/_history?_count=100"}).Expect(t, 200).JSON(t)
		seen := map[string]bool{}
		for _, e := range h["entry"].([]any) {
			v := e.(map[string]any)["resource"].(map[string]any)["meta"].(map[string]any)["versionId"].(string)
			if seen[v] {
				t.Fatalf("version %s twice", v)
			}
			seen[v] = true
		}
		if len(seen) != 41 {
			t.Fatalf("%d versions, want 41", len(seen))
		}
	})
}

func TestHistoryPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		for i := 0; i < 5; i++ {
			s.Do(ts.Req{Method: "POST", Path: "/fhir/Observation", Body: `{"resourceType":"Observation","status":"final","code":{"text":"t"}}`}).Expect(t, 201)
		}
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Patient"}`}).Expect(t, 201)
		next := "/fhir/Observation/_history?_count=2"
		var total, pages int
		for next != "" {
			b := s.Do(ts.Req{Method: "GET", Path: next}).Expect(t, 200).JSON(t)
			pages++
			if e, ok := b["entry"].([]any); ok {
				total += len(e)
			}
			next = ""
			for _, l := range b["link"].([]any) {
				l := l.(map[string]any)
				if l["relation"] == "next" {
					next = strings.TrimPrefix(l["url"].(string), s.URL)
				}
			}
		}
		if total != 5 || pages != 3 {
			t.Fatalf("paged %d entries in %d pages, want 5 in 3", total, pages)
		}
		sys := s.Do(ts.Req{Method: "GET", Path: "/fhir/_history"}).Expect(t, 200).JSON(t)
		if n := len(sys["entry"].([]any)); n != 6 {
			t.Fatalf("system history: %d entries", n)
		}
		future := s.Do(ts.Req{Method: "GET", Path: "/fhir/_history?_since=2999-01-01T00:00:00Z"}).Expect(t, 200).JSON(t)
		if _, has := future["entry"]; has {
			t.Fatalf("_since in the future returned entries")
		}
	})
}

func TestMetadata(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		cs := s.Do(ts.Req{Method: "GET", Path: "/fhir/metadata", Auth: "none"}).Expect(t, 200).JSON(t)
		if cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" || cs["kind"] != "instance" {
			t.Fatalf("metadata %v", cs["resourceType"])
		}
		rest := cs["rest"].([]any)[0].(map[string]any)
		if n := len(rest["resource"].([]any)); n != 146 {
			t.Fatalf("%d resource types, want 146", n)
		}
		sec := rest["security"].(map[string]any)
		ext := sec["extension"].([]any)[0].(map[string]any)
		if ext["url"] != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			t.Fatalf("security extension %v", ext)
		}
		token := ext["extension"].([]any)[0].(map[string]any)
		if token["url"] != "token" || token["valueUri"] != s.URL+"/auth/token" {
			t.Fatalf("oauth-uris token %v", token)
		}
		var interactions []string
		for _, i := range rest["interaction"].([]any) {
			interactions = append(interactions, i.(map[string]any)["code"].(string))
		}
		if got := strings.Join(interactions, ","); !strings.Contains(got, "transaction") || !strings.Contains(got, "batch") {
			t.Fatalf("system interactions %s", got)
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "GET", Path: "/health", Auth: "none"}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/x"}).Expect(t, 404)
		m := s.Do(ts.Req{Method: "GET", Path: "/metrics", Auth: "none"}).Expect(t, 200)
		want := `fhirgate_http_requests_total{code="404",method="GET",route="/fhir/{type}/{id}"} 1`
		if !strings.Contains(string(m.Body), want) {
			t.Fatalf("metrics lack %s", want)
		}
		if !strings.Contains(string(m.Body), "fhirgate_http_request_duration_seconds_bucket") {
			t.Fatal("metrics lack the latency histogram")
		}
		r := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/x", Header: map[string]string{"X-Request-Id": "trace-me-42"}})
		if r.Header.Get("X-Request-Id") != "trace-me-42" {
			t.Fatalf("request id not echoed")
		}
		if !strings.Contains(s.Logs.String(), `"request_id":"trace-me-42"`) {
			t.Fatalf("the request's log line lacks its request id:\n%s", s.Logs.String())
		}
	})
}
