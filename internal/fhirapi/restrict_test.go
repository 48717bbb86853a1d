package fhirapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/search/match"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// restrictor is a grant with fixed query restrictions per type (the seam
// the access decider implements).
type restrictor map[string][]url.Values

func (r restrictor) Restrictions(_ context.Context, typ string, _ authz.Interaction) ([]url.Values, error) {
	return r[typ], nil
}

// failing is a matcher whose store broke.
type failing struct{}

func (failing) MatchResource(context.Context, string, []url.Values, []byte) (bool, error) {
	return false, errors.New("disk on fire")
}

var allowAll = authz.AuthorizerFunc(func(context.Context, authz.Request) error { return nil })

func newService(t *testing.T, r authz.Restrictor, m fhirapi.ResourceMatcher) *fhirapi.Service {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), testdb.SQLiteURL(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := fhirapi.New(fhirapi.Config{Store: st, BaseURL: "http://fhirgate.test", Authorizer: allowAll, Restrictor: r, Matcher: m})
	ctx := context.Background()
	for _, b := range []string{
		`{"resourceType":"Observation","id":"lab","status":"final","category":[{"coding":[{"code":"laboratory"}]}],"code":{"text":"x"}}`,
		`{"resourceType":"Observation","id":"vs","status":"final","category":[{"coding":[{"code":"vital-signs"}]}],"code":{"text":"x"}}`,
	} {
		id := b[strings.Index(b, `"id":"`)+6:]
		id = id[:strings.IndexByte(id, '"')]
		if _, err := s.Update(ctx, "Observation", id, []byte(b), ""); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestReadRestrictions covers the seam's decisions, including the ways it
// fails closed: no matcher, a restriction the matcher cannot evaluate.
func TestReadRestrictions(t *testing.T) {
	lab := restrictor{"Observation": {{"category": {"laboratory"}}}}
	chain := restrictor{"Observation": {{"patient.name": {"x"}}}}
	none := restrictor{"Observation": {}}
	tests := []struct {
		name    string
		r       authz.Restrictor
		m       fhirapi.ResourceMatcher
		id      string
		status  int    // 0: allowed
		diag    string // in the diagnostics
		errText string // a non-FHIR error
	}{
		{"unrestricted", nil, nil, "vs", 0, "", ""},
		{"no restriction on the type", restrictor{"Patient": {{"gender": {"male"}}}}, &match.Cache{}, "vs", 0, "", ""},
		{"match", lab, &match.Cache{}, "lab", 0, "", ""},
		{"no match", lab, &match.Cache{}, "vs", http.StatusForbidden, "scope does not cover Observation/vs: read access to Observation is restricted to resources matching category=laboratory", ""},
		{"empty restriction list", none, &match.Cache{}, "lab", http.StatusForbidden, "scope does not cover Observation/lab", ""},
		{"no matcher", lab, nil, "lab", http.StatusForbidden, "which this server cannot apply to a read", ""},
		{"restriction the matcher refuses", chain, &match.Cache{}, "lab", http.StatusForbidden, `restriction patient.name=x of the access granted on Observation cannot be applied: search parameter "patient.name" cannot be evaluated on a single resource`, ""},
		{"matcher failure", lab, failing{}, "lab", 0, "", "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, tt.r, tt.m)
			res, err := s.Read(context.Background(), "Observation", tt.id)
			switch fe := fhir.AsError(err); {
			case tt.errText != "":
				if err == nil || fe != nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want the matcher's failure", err)
				}
			case tt.status == 0:
				if err != nil || res.Status != http.StatusOK {
					t.Fatalf("Read = %v, %v", res, err)
				}
			case fe == nil || fe.Status != tt.status || !strings.Contains(fe.Diagnostics, tt.diag):
				t.Fatalf("err = %v, want %d with %q", err, tt.status, tt.diag)
			}
		})
	}
}
