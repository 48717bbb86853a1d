package sqlstore

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// filtered returns the ids of the live resources of typ that pred selects,
// scanning history the way an export snapshot does.
func filtered(t *testing.T, s *Store, typ, pred string, args []any) string {
	t.Helper()
	q := "SELECT h.id FROM history h WHERE h.type = ? AND h.superseded_ts IS NULL AND h.method <> 'DELETE' AND " + pred
	rows, err := s.r.QueryContext(context.Background(), s.d.rebind(q), append([]any{typ}, args...)...)
	if err != nil {
		t.Fatalf("%s: %v", pred, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		out = append(out, id)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestCompileFilter(t *testing.T) {
	vals := func(raws ...string) []url.Values {
		var out []url.Values
		for _, r := range raws {
			v, _ := url.ParseQuery(r)
			out = append(out, v)
		}
		return out
	}
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		loadFixture(t, s)
		cases := []struct {
			typ     string
			queries []url.Values
			want    string
		}{
			{"Observation", nil, "o1 o2 o3 o4 o5"},
			{"Observation", vals("code=http://loinc.org|8480-6"), "o1 o3"},
			{"Observation", vals("status=amended", "code=http://loinc.org|8480-6"), "o1 o2 o3"},
			{"Observation", vals("patient=Patient/p1,Patient/p2"), "o1 o2 o3"},
			{"Observation", vals("patient=Patient/p1&date=ge2020-01-02"), "o1 o2"},
			{"Patient", vals("_id=p1,p3"), "p1 p3"},
		}
		for _, c := range cases {
			pred, args, err := s.CompileFilterOn("h.rid", c.typ, c.queries)
			if err != nil {
				t.Fatal(err)
			}
			if got := filtered(t, s, c.typ, pred, args); got != c.want {
				t.Errorf("%s %v: got %q, want %q", c.typ, c.queries, got, c.want)
			}
		}
		// the unqualified form
		pred, _, _ := s.CompileFilter("Observation", vals("status=final"))
		if !strings.HasPrefix(pred, "rid IN (") {
			t.Errorf("CompileFilter: %s", pred)
		}
		// refusals name the parameter
		for raw, diag := range map[string]string{
			"bogus=1":       `search parameter "bogus" is unknown for Observation`,
			"date=2020-13":  `search parameter "date": invalid date "2020-13"`,
			"_count=5":      `search parameter "_count": a filter on Observation cannot use result parameters`,
			"_sort=date":    `search parameter "_sort": a filter on Observation cannot use result parameters`,
			"code:fuzzy=12": `search parameter "code:fuzzy": unknown modifier :fuzzy`,
		} {
			_, _, err := s.CompileFilter("Observation", vals(raw))
			if fe := fhir.AsError(err); fe == nil || fe.Status != 400 || fe.Diagnostics != diag {
				t.Errorf("%s: %v, want 400 %q", raw, err, diag)
			}
		}
		// compartment membership
		for _, c := range []struct{ typ, ids, want string }{
			{"Observation", "p1", "o1 o2"},
			{"Observation", "p1,p2", "o1 o2 o3"},
			{"Patient", "p2", "p2"},
			{"Encounter", "p1", "e1"},
			{"Organization", "p1", ""},
		} {
			pred, args := s.CompartmentFilter("h.rid", c.typ, strings.Split(c.ids, ","))
			if got := filtered(t, s, c.typ, pred, args); got != c.want {
				t.Errorf("compartment %s of %s: got %q, want %q", c.typ, c.ids, got, c.want)
			}
		}
	})
}
