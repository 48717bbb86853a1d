package app_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// TestTwoServersOnePostgres: two fhirgate servers on one PostgreSQL database
// share updates without losing any, and serialize conditional creates.
func TestTwoServersOnePostgres(t *testing.T) {
	url := testdb.PostgresURL(t)
	a, b := ts.Start(t, url), ts.Start(t, url)
	a.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/shared", Body: `{"resourceType":"Patient","id":"shared"}`}).Expect(t, 201)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/shared",
				Body: fmt.Sprintf(`{"resourceType":"Patient","id":"shared","name":[{"family":"w%d"}]}`, i)}).Expect(t, 200)
			s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: `{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"once"}]}`,
				Header: map[string]string{"If-None-Exist": "identifier=urn:x|once"}})
		}(i)
	}
	wg.Wait()
	cur := b.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/shared"}).Expect(t, 200).JSON(t)
	if v := cur["meta"].(map[string]any)["versionId"]; v != "41" {
		t.Fatalf("versionId %v after 40 updates through two servers, want 41", v)
	}
	h := a.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/_history?_count=1000"}).Expect(t, 200).JSON(t)
	created := 0
	for _, e := range h["entry"].([]any) {
		if e.(map[string]any)["request"].(map[string]any)["method"] == "POST" {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d conditional creates through two servers created, want 1", created)
	}
}
