package fhirsearch_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/fhirsearch"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// grant is a hand-written Authorizer and Restrictor: the seam that
// access.Decider fills in a real server.
type grant struct {
	refuse   map[string]bool         // types without read access
	restrict map[string][]url.Values // query restrictions per type
}

func (g grant) Authorize(_ context.Context, req authz.Request) error {
	if g.refuse[req.Type] {
		return fhir.Forbidden("no %s for %s", req.Interaction, req.Type)
	}
	return nil
}

func (g grant) Restrictions(_ context.Context, typ string, _ authz.Interaction) ([]url.Values, error) {
	return g.restrict[typ], nil
}

func engineStore(t *testing.T, newURL func(testing.TB) string) *sqlstore.Store {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, newURL(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bodies := []string{
		`{"resourceType":"Patient","id":"a","managingOrganization":{"reference":"Organization/org"}}`,
		`{"resourceType":"Organization","id":"org"}`,
		`{"resourceType":"Observation","id":"lab","status":"final","category":[{"coding":[{"code":"laboratory"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/a"}}`,
		`{"resourceType":"Observation","id":"vital","status":"final","category":[{"coding":[{"code":"vital-signs"}]}],"code":{"text":"y"},"subject":{"reference":"Patient/a"}}`,
	}
	err = st.Write(ctx, func(tx store.Tx) error {
		for _, b := range bodies {
			r, err := resource.Parse([]byte(b))
			if err != nil {
				return err
			}
			if _, err := tx.Create(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func searchIDs(t *testing.T, e *fhirsearch.Engine, typ, raw string) (match, include []string) {
	t.Helper()
	v, _ := url.ParseQuery(raw)
	res, err := e.Search(context.Background(), fhirapi.SearchRequest{Type: typ, Params: v})
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, raw, err)
	}
	var b struct {
		Entry []struct {
			Resource struct{ ResourceType, ID string }
			Search   struct{ Mode string }
		}
	}
	if err := json.Unmarshal(res.Body, &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Entry {
		id := e.Resource.ResourceType + "/" + e.Resource.ID
		switch e.Search.Mode {
		case "match":
			match = append(match, id)
		case "include":
			include = append(include, id)
		}
	}
	slices.Sort(match)
	slices.Sort(include)
	return match, include
}

func TestGrantLimitsSearch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		st := engineStore(t, newURL)
		g := grant{
			refuse:   map[string]bool{"Organization": true},
			restrict: map[string][]url.Values{"Observation": {{"category": {"laboratory"}}}},
		}
		e := fhirsearch.New(fhirsearch.Config{Store: st, Base: "http://x/fhir", Authorizer: g, Restrictor: g})
		// a query-restricted scope filters the matches, ANDed with the query
		if m, _ := searchIDs(t, e, "Observation", ""); !slices.Equal(m, []string{"Observation/lab"}) {
			t.Fatalf("restricted search: %v", m)
		}
		if m, _ := searchIDs(t, e, "Observation", "category=vital-signs"); len(m) != 0 {
			t.Fatalf("restricted search for what the grant excludes: %v", m)
		}
		// _revinclude applies the restriction to the included type
		m, inc := searchIDs(t, e, "Patient", "_revinclude=Observation:subject")
		if !slices.Equal(m, []string{"Patient/a"}) || !slices.Equal(inc, []string{"Observation/lab"}) {
			t.Fatalf("revinclude: %v %v", m, inc)
		}
		// _include never returns a type outside the grant
		if _, inc := searchIDs(t, e, "Patient", "_include=Patient:organization"); len(inc) != 0 {
			t.Fatalf("included a refused type: %v", inc)
		}
		if _, inc := searchIDs(t, e, "Observation", "_include=*"); !slices.Equal(inc, []string{"Patient/a"}) {
			t.Fatalf("_include=*: %v", inc)
		}
		// a restriction the server cannot apply refuses the search
		bad := grant{restrict: map[string][]url.Values{"Observation": {{"nonsense": {"1"}}}}}
		e = fhirsearch.New(fhirsearch.Config{Store: st, Authorizer: bad, Restrictor: bad})
		_, err := e.Search(context.Background(), fhirapi.SearchRequest{Type: "Observation"})
		if fe := fhir.AsError(err); fe == nil || fe.Status != 403 || !strings.Contains(fe.Diagnostics, "cannot be applied") {
			t.Fatalf("unusable restriction: %v", err)
		}
	})
}
