package export

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/search/match"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

// searchMatcher is package match at the QueryMatcher seam, as the server
// wires it.
type searchMatcher struct{ c match.Compiler }

func (m searchMatcher) Compile(_ context.Context, typ string, queries []url.Values) (Matcher, error) {
	mm, err := m.c.Compile(typ, queries)
	if err != nil {
		return nil, err
	}
	return match.ContextMatcher{M: mm}, nil
}

// restrictObservations is a grant whose Observation access is restricted
// by a query.
type restrictObservations url.Values

func (r restrictObservations) Restrictions(_ context.Context, typ string, _ authz.Interaction) ([]url.Values, error) {
	if typ != "Observation" {
		return nil, nil
	}
	return []url.Values{url.Values(r)}, nil
}

// kickoffStatus sends a kick-off and returns its status and diagnostics.
func (h *harness) kickoffStatus(t *testing.T, query string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/fhir/$export"+query, nil)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var o struct {
		Issue []struct{ Diagnostics string }
	}
	json.Unmarshal(b, &o)
	d := ""
	if len(o.Issue) > 0 {
		d = o.Issue[0].Diagnostics
	}
	return resp.StatusCode, d, resp.Header.Get("Content-Location")
}

// TestFiltersOnSingleResources: _typeFilter and query-restricted scopes
// are decided per resource by package match, so what needs other
// resources (a chain, _has) is refused at kick-off with 400, while a
// filter on the resource itself selects from the snapshot.
func TestFiltersOnSingleResources(t *testing.T) {
	// Subtests of distinct names: testdb's SQLite URL breaks on the "#01"
	// Go appends to a repeated name.
	t.Run("typeFilter", func(t *testing.T) {
		eachDB(t, func(t *testing.T, dbURL string) {
			h := startHarness(t, dbURL, 3, func(c *Config, _ *sqlstore.Store) {
				c.Matcher = searchMatcher{match.Compiler{Base: c.BaseURL + "/fhir"}}
			})
			for _, c := range []struct{ filter, diag string }{
				{"Observation?subject:Patient.name=x", `search parameter "subject:Patient.name" cannot be evaluated on a single resource: a chained parameter depends on the resources it points at`},
				{"Patient?_has:Observation:subject:status=final", `cannot be evaluated on a single resource: _has selects by the resources that point at a resource`},
			} {
				status, diag, _ := h.kickoffStatus(t, "?_typeFilter="+url.QueryEscape(c.filter))
				if status != http.StatusBadRequest || !strings.Contains(diag, c.diag) {
					t.Errorf("_typeFilter=%s: %d %q, want 400 with %q", c.filter, status, diag, c.diag)
				}
			}
			resp, body := h.await(t, h.kickoff(t, "?_type=Observation&_typeFilter="+url.QueryEscape("Observation?subject=Patient/p1")))
			var m Manifest
			if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("filtered export: %d %s", resp.StatusCode, body)
			}
			if len(m.Output) != 1 || m.Output[0].Type != "Observation" || m.Output[0].Count != 1 {
				t.Fatalf("filtered export output %+v, want one Observation", m.Output)
			}
		})
	})
	t.Run("scope", func(t *testing.T) {
		eachDB(t, func(t *testing.T, dbURL string) {
			h := startHarness(t, dbURL, 1, func(c *Config, _ *sqlstore.Store) {
				c.Matcher = searchMatcher{match.Compiler{Base: c.BaseURL + "/fhir"}}
				c.Scopes = restrictObservations{"subject:Patient.name": {"x"}}
			})
			status, diag, _ := h.kickoffStatus(t, "")
			if status != http.StatusBadRequest || !strings.Contains(diag, "a chained parameter depends on the resources it points at") {
				t.Fatalf("a chained scope restriction: %d %q, want 400", status, diag)
			}
		})
	})
}
