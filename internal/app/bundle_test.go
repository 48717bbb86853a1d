package app_test

import (
	"strings"
	"testing"

	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

func entries(t *testing.T, b map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range b["entry"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func status(e map[string]any) string {
	return e["response"].(map[string]any)["status"].(string)
}

func TestTransaction(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/old", Body: `{"resourceType":"Patient","id":"old"}`}).Expect(t, 201)
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/keep", Body: `{"resourceType":"Patient","id":"keep"}`}).Expect(t, 201)
		// Entries out of processing order: the GET of the new Patient and
		// of the deleted one come first, yet run last (R4 http.html#trules).
		tx := `{"resourceType":"Bundle","type":"transaction","entry":[
		  {"request":{"method":"GET","url":"Patient/keep"}},
		  {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},
		    "subject":{"reference":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"},
		    "identifier":[{"value":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"}]},
		   "request":{"method":"POST","url":"Observation"}},
		  {"fullUrl":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059","resource":{"resourceType":"Patient","name":[{"family":"New"}]},
		   "request":{"method":"POST","url":"Patient"}},
		  {"resource":{"resourceType":"Patient","id":"keep","active":true},"request":{"method":"PUT","url":"Patient/keep"}},
		  {"request":{"method":"DELETE","url":"Patient/old"}}
		]}`
		b := s.Do(ts.Req{Method: "POST", Path: "/fhir", Body: tx}).Expect(t, 200).JSON(t)
		if b["type"] != "transaction-response" {
			t.Fatalf("type %v", b["type"])
		}
		es := entries(t, b)
		if len(es) != 5 {
			t.Fatalf("%d response entries", len(es))
		}
		for i, want := range []string{"200", "201", "201", "200", "204"} {
			if !strings.HasPrefix(status(es[i]), want) {
				t.Fatalf("entry %d status %q, want %s", i, status(es[i]), want)
			}
		}
		// The GET ran after the PUT: it sees version 2 with active=true.
		if got := es[0]["resource"].(map[string]any); got["active"] != true {
			t.Fatalf("GET did not run after PUT: %v", got)
		}
		obsLoc := es[1]["response"].(map[string]any)["location"].(string)
		patLoc := es[2]["response"].(map[string]any)["location"].(string)
		patID := strings.Split(strings.TrimPrefix(patLoc, s.URL+"/fhir/Patient/"), "/")[0]
		obs := s.Do(ts.Req{Method: "GET", Path: strings.TrimPrefix(obsLoc, s.URL)}).Expect(t, 200).JSON(t)
		if ref := obs["subject"].(map[string]any)["reference"]; ref != "Patient/"+patID {
			t.Fatalf("urn:uuid reference not resolved: %v (patient %s)", ref, patID)
		}
		if v := obs["identifier"].([]any)[0].(map[string]any)["value"]; v != "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059" {
			t.Fatalf("a non-reference value was rewritten: %v", v)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/old"}).Expect(t, 410)
	})
}

// TestTransactionAtomic: a failing entry in the middle leaves nothing behind.
func TestTransactionAtomic(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p", Body: `{"resourceType":"Patient","id":"p"}`}).Expect(t, 201)
		tx := `{"resourceType":"Bundle","type":"transaction","entry":[
		  {"resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient/a"}},
		  {"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p","ifMatch":"W/\"7\""}},
		  {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
		  {"request":{"method":"DELETE","url":"Patient/p"}}
		]}`
		tx = strings.Replace(tx, `{"request":{"method":"DELETE","url":"Patient/p"}}`, `{"request":{"method":"DELETE","url":"Patient/q"}}`, 1)
		d := s.Do(ts.Req{Method: "POST", Path: "/fhir", Body: tx}).Expect(t, 412).Outcome(t)
		if !strings.Contains(d, "entry 1") {
			t.Fatalf("the error does not name the failing entry: %q", d)
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/a"}).Expect(t, 404)
		h := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/_history"}).Expect(t, 200).JSON(t)
		if n := len(h["entry"].([]any)); n != 1 {
			t.Fatalf("history holds %d versions after a failed transaction, want 1", n)
		}
		// Overlapping identities fail the transaction.
		dup := `{"resourceType":"Bundle","type":"transaction","entry":[
		  {"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p"}},
		  {"request":{"method":"DELETE","url":"Patient/p"}}]}`
		s.Do(ts.Req{Method: "POST", Path: "/fhir", Body: dup}).Expect(t, 400).Outcome(t)
	})
}

func TestBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p", Body: `{"resourceType":"Patient","id":"p"}`}).Expect(t, 201)
		batch := `{"resourceType":"Bundle","type":"batch","entry":[
		  {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
		  {"request":{"method":"GET","url":"Patient/missing"}},
		  {"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Patient"}},
		  {"request":{"method":"GET","url":"Patient/p"}},
		  {"request":{"method":"DELETE","url":"Patient/p"}},
		  {"request":{"method":"GET","url":"Spaceship/1"}},
		  {"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p","ifMatch":"W/\"1\""}}
		]}`
		es := entries(t, s.Do(ts.Req{Method: "POST", Path: "/fhir", Body: batch}).Expect(t, 200).JSON(t))
		for i, want := range []string{"201", "404", "400", "200", "204", "404", "412"} {
			if !strings.HasPrefix(status(es[i]), want) {
				t.Fatalf("entry %d status %q, want %s", i, status(es[i]), want)
			}
		}
		if es[1]["response"].(map[string]any)["outcome"].(map[string]any)["resourceType"] != "OperationOutcome" {
			t.Fatal("failed entry lacks an OperationOutcome")
		}
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p"}).Expect(t, 410)
	})
}

func TestBundleErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		for name, body := range map[string]string{
			"not a bundle":      `{"resourceType":"Patient"}`,
			"wrong bundle type": `{"resourceType":"Bundle","type":"collection"}`,
			"no request":        `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]}`,
			"bad method":        `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"FETCH","url":"Patient/1"}}]}`,
			"post with id url":  `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient/1"}}]}`,
			"type mismatch":     `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Observation"}}]}`,
			"malformed":         `{"resourceType":"Bundle",`,
		} {
			t.Run(name, func(t *testing.T) {
				s.Do(ts.Req{Method: "POST", Path: "/fhir", Body: body}).Expect(t, 400).Outcome(t)
			})
		}
	})
}
