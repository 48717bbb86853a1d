package app_test

import (
	"testing"

	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// TestReRegisteredClientTokensStayDead: a token of a client that is
// deleted and then registered again under the same id (same key, same
// scope) stays refused; a replacement of the client does not end it, and
// the new registration gets new tokens that work.
func TestReRegisteredClientTokensStayDead(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)
		key := backendClient(t, s, "c1", []string{"system/*.rs"}, false)
		old := token(t, s, key, "c1", "system/*.rs")
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(old.AccessToken)}).Expect(t, 200)

		body := s.Do(ts.Req{Method: "GET", Path: "/Client/c1"}).Expect(t, 200).Body
		s.Do(ts.Req{Method: "PUT", Path: "/Client/c1", Body: string(body)}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(old.AccessToken)}).Expect(t, 200)

		s.Do(ts.Req{Method: "DELETE", Path: "/Client/c1"}).Expect(t, 200)
		s.Do(ts.Req{Method: "PUT", Path: "/Client/c1", Body: string(body)}).Expect(t, 201)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(old.AccessToken)}).Expect(t, 401).Outcome(t)

		fresh := token(t, s, key, "c1", "system/*.rs")
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/p1", Auth: bearer(fresh.AccessToken)}).Expect(t, 200)
	})
}
