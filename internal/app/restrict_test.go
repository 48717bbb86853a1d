package app_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/client/bulk"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// Query-restricted SMART scopes on reads, and _typeFilter and scope
// filters on exports, through the real server and its single-resource
// matcher (package search/match).

const labCategory = `"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}]`
const vitalCategory = `"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}]`

func observation(id, category string) string {
	return `{"resourceType":"Observation","id":"` + id + `","status":"final",` + category + `,"code":{"text":"x"}}`
}

// versionsOf lists the entries of a history Bundle as id/vid.
func versionsOf(t *testing.T, r *ts.Response) []string {
	t.Helper()
	var b struct {
		Entry []struct {
			FullURL  string
			Response struct{ Etag string }
		}
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range b.Entry {
		id := e.FullURL[strings.LastIndex(e.FullURL, "/")+1:]
		out = append(out, id+"/"+strings.Trim(strings.TrimPrefix(e.Response.Etag, "W/"), `"`))
	}
	return out
}

// searchIDs runs a search and returns the ids of its matches, sorted; the
// search must fit on one page.
func searchIDs(t *testing.T, s *ts.Server, auth, path string) []string {
	t.Helper()
	r := s.Do(ts.Req{Method: "GET", Path: path, Auth: auth}).Expect(t, 200)
	var b struct {
		Link  []struct{ Relation string }
		Entry []struct {
			Resource struct{ ID string }
			Search   struct{ Mode string }
		}
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	for _, l := range b.Link {
		if l.Relation == "next" {
			t.Fatalf("%s does not fit on one page", path)
		}
	}
	out := []string{}
	for _, e := range b.Entry {
		if e.Search.Mode == "match" {
			out = append(out, e.Resource.ID)
		}
	}
	sort.Strings(out)
	return out
}

// TestQueryRestrictedReads: a scope system/Observation.rs?category=laboratory
// lets its client read laboratory Observations only: reads and vreads of
// others get 403, history lists only the versions it covers, batch and
// transaction GET entries are decided the same way, search agrees.
func TestQueryRestrictedReads(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *ts.Server) {
		put := func(id, body string, status int) {
			s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/" + id, Body: body}).Expect(t, status)
		}
		put("lab1", observation("lab1", labCategory), 201)
		put("vs1", observation("vs1", vitalCategory), 201)
		put("flip", observation("flip", labCategory), 201) // v1 lab, v2 vital signs, v3 lab
		put("flip", observation("flip", vitalCategory), 200)
		put("flip", observation("flip", labCategory), 200)
		put("gone-lab", observation("gone-lab", labCategory), 201)
		put("gone-vs", observation("gone-vs", vitalCategory), 201)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/gone-lab"}).Expect(t, 204)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/gone-vs"}).Expect(t, 204)
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/p1", Body: `{"resourceType":"Patient","id":"p1"}`}).Expect(t, 201)

		scope := "system/Observation.rs?category=laboratory system/Patient.rs"
		key := backendClient(t, s, "lab-reader", strings.Fields(scope), false)
		tr := token(t, s, key, "lab-reader", scope)
		if tr.Scope != scope {
			t.Fatalf("granted %q", tr.Scope)
		}
		tok := bearer(tr.AccessToken)
		get := func(path string, status int) *ts.Response {
			t.Helper()
			return s.Do(ts.Req{Method: "GET", Path: path, Auth: tok}).Expect(t, status)
		}

		get("/fhir/Observation/lab1", 200)
		d := get("/fhir/Observation/vs1", 403).Outcome(t)
		if !strings.Contains(d, "scope does not cover Observation/vs1") || !strings.Contains(d, "category=laboratory") {
			t.Fatalf("403 diagnostics %q", d)
		}
		get("/fhir/Observation/unknown", 404)
		get("/fhir/Observation/gone-lab", 410)
		get("/fhir/Patient/p1", 200)
		get("/fhir/Observation/flip", 200)
		get("/fhir/Observation/flip/_history/1", 200)
		if d := get("/fhir/Observation/flip/_history/2", 403).Outcome(t); !strings.Contains(d, "Observation/flip") {
			t.Fatalf("vread 403 diagnostics %q", d)
		}

		// History: the versions it covers, and deletions of those.
		for path, want := range map[string][]string{
			"/fhir/Observation/flip/_history":     {"flip/3", "flip/1"},
			"/fhir/Observation/gone-lab/_history": {"gone-lab/2", "gone-lab/1"},
			"/fhir/Observation/gone-vs/_history":  {},
			"/fhir/Observation/vs1/_history":      {},
		} {
			if got := versionsOf(t, get(path, 200)); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", path, got, want)
			}
		}
		got := versionsOf(t, get("/fhir/Observation/_history", 200))
		sort.Strings(got)
		if want := []string{"flip/1", "flip/3", "gone-lab/1", "gone-lab/2", "lab1/1"}; !slices.Equal(got, want) {
			t.Errorf("type history %v, want %v", got, want)
		}
		if got := versionsOf(t, s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/flip/_history"}).Expect(t, 200)); len(got) != 3 {
			t.Errorf("root's history of flip: %v", got)
		}
		if ids := searchIDs(t, s, tok, "/fhir/Observation?_count=100"); !slices.Equal(ids, []string{"flip", "lab1"}) {
			t.Errorf("search %v", ids)
		}

		// Batch entries each on their own; a transaction fails as a whole.
		es := entries(t, s.Do(ts.Req{Method: "POST", Path: "/fhir", Auth: tok, Body: `{"resourceType":"Bundle","type":"batch","entry":[
		  {"request":{"method":"GET","url":"Observation/lab1"}},{"request":{"method":"GET","url":"Observation/vs1"}},
		  {"request":{"method":"GET","url":"Observation/flip/_history/2"}},{"request":{"method":"GET","url":"Observation/flip/_history"}}]}`}).Expect(t, 200).JSON(t))
		var statuses []string
		for _, e := range es {
			statuses = append(statuses, status(e)[:3])
		}
		if !slices.Equal(statuses, []string{"200", "403", "403", "200"}) {
			t.Fatalf("batch statuses %v", statuses)
		}
		tx := func(url string) *ts.Response {
			return s.Do(ts.Req{Method: "POST", Path: "/fhir", Auth: tok,
				Body: `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"` + url + `"}}]}`})
		}
		tx("Observation/lab1").Expect(t, 200)
		if d := tx("Observation/vs1").Expect(t, 403).Outcome(t); !strings.Contains(d, "entry 0") || !strings.Contains(d, "Observation/vs1") {
			t.Fatalf("transaction 403 diagnostics %q", d)
		}

		// Root is not restricted.
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/vs1"}).Expect(t, 200)

		// A restriction that cannot be decided on one resource refuses
		// the read rather than being ignored, which would widen the grant.
		chainScope := "system/Observation.rs?patient.name=x"
		ck := backendClient(t, s, "chain", []string{chainScope}, false)
		ct := bearer(token(t, s, ck, "chain", chainScope).AccessToken)
		if d := s.Do(ts.Req{Method: "GET", Path: "/fhir/Observation/lab1", Auth: ct}).Expect(t, 403).Outcome(t); !strings.Contains(d, "cannot be applied") {
			t.Fatalf("chained restriction: %q", d)
		}
	})
}

// TestExportFiltersMatchSearch: an export's _typeFilter selects exactly
// what a search with the same query returns; filters on one type are
// ORed, each type is filtered on its own, and a query-restricted scope
// filters on top; what cannot be decided on one resource is refused.
func TestExportFiltersMatchSearch(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 6)
		c := bulkFor(s, rootHTTP())
		filters := []string{
			"Patient?gender=female", "Observation?code=http://loinc.org|8302-2&value-quantity=gt100&date=ge2015",
			"Condition?clinical-status=active", "Encounter?class=AMB&date=lt2023-06", "MedicationRequest?status:not=active",
			"Claim?created=ge2023-06-01T00:00:00Z",
		}
		var types []string
		for _, f := range filters {
			typ, _, _ := strings.Cut(f, "?")
			types = append(types, typ)
		}
		_, got := exported(t, c, bulk.Request{Types: types, TypeFilters: filters})
		for _, f := range filters {
			typ, q, _ := strings.Cut(f, "?")
			want := searchIDs(t, s, "", "/fhir/"+typ+"?"+q+"&_count=1000")
			if len(want) == 0 || len(want) == len(d[typ]) {
				t.Errorf("%s selects %d of %d: choose a query that tells", f, len(want), len(d[typ]))
			}
			if ids := idsOf(got[typ]); !slices.Equal(ids, want) {
				t.Errorf("_typeFilter %s exported %d resources, search finds %d", f, len(ids), len(want))
			}
		}

		// Two filters of one type: either may match.
		_, got = exported(t, c, bulk.Request{Types: []string{"Observation"},
			TypeFilters: []string{"Observation?category=laboratory", "Observation?code=http://loinc.org|8302-2"}})
		want := append(searchIDs(t, s, "", "/fhir/Observation?category=laboratory&_count=1000"),
			searchIDs(t, s, "", "/fhir/Observation?code=http://loinc.org|8302-2&_count=1000")...)
		sort.Strings(want)
		if ids := idsOf(got["Observation"]); !slices.Equal(ids, slices.Compact(want)) {
			t.Errorf("two filters exported %d Observations, want %d", len(ids), len(slices.Compact(want)))
		}

		// A query-restricted scope, alone and with a _typeFilter.
		scope := "system/Observation.rs?category=laboratory system/Patient.rs"
		key := backendClient(t, s, "lab-export", strings.Fields(scope), false)
		hc := smartHTTP(t, s, key, "lab-export", scope)
		_, got = exported(t, bulkFor(s, hc), bulk.Request{Types: []string{"Observation", "Patient"}})
		if ids := idsOf(got["Observation"]); !slices.Equal(ids, searchIDs(t, s, "", "/fhir/Observation?category=laboratory&_count=1000")) ||
			len(got["Patient"]) != len(d["Patient"]) {
			t.Errorf("restricted export: %d Observations, %d Patients", len(ids), len(got["Patient"]))
		}
		_, got = exported(t, bulkFor(s, hc), bulk.Request{Types: []string{"Observation"}, TypeFilters: []string{"Observation?date=ge2020"}})
		if ids := idsOf(got["Observation"]); !slices.Equal(ids, searchIDs(t, s, "", "/fhir/Observation?category=laboratory&date=ge2020&_count=1000")) {
			t.Errorf("restricted export with _typeFilter: %d Observations", len(ids))
		}

		// Refusals name the parameter.
		for q, want := range map[string]string{
			"Observation%3F_count%3D5":                          `_count is not allowed`,
			"Observation%3Fsubject.name%3Dx":                    `"subject.name" cannot be evaluated on a single resource`,
			"Patient%3F_has%3AObservation%3Apatient%3Acode%3D1": `"_has:Observation:patient:code"`,
			"Observation%3Fnonsense%3D1":                        `"nonsense" is unknown`,
		} {
			typ, _, _ := strings.Cut(q, "%3F")
			r := kickoff(s, "", "GET", "/fhir/$export?_type="+typ+"&_typeFilter="+q, "", nil).Expect(t, 400)
			if d := r.Outcome(t); !strings.Contains(d, want) {
				t.Errorf("_typeFilter=%s: %q, want it to mention %s", q, d, want)
			}
		}
	})
}

// TestExportFilterDecidesOnSnapshot: the filter is decided on the version
// of the export's snapshot, not on what the resource became after the
// kick-off (which the search index would see).
func TestExportFilterDecidesOnSnapshot(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 6)
		var female []string
		for id, body := range d["Patient"] {
			if strings.Contains(string(body), `"gender":"female"`) {
				female = append(female, id)
			}
		}
		sort.Strings(female)
		if len(female) == 0 || len(female) == len(d["Patient"]) {
			t.Fatalf("the data set needs both genders: %d of %d female", len(female), len(d["Patient"]))
		}
		r := kickoff(s, "", "GET", "/fhir/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale", "", nil).Expect(t, 202)
		// Swap every patient's gender after the kick-off.
		swap := strings.NewReplacer(`"gender":"female"`, `"gender":"male"`, `"gender":"male"`, `"gender":"female"`)
		for id, body := range d["Patient"] {
			s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/" + id, Body: swap.Replace(string(body))}).Expect(t, 200)
		}
		m := manifestOf(t, waitDone(t, s, "", r.Header.Get("Content-Location")))
		res, err := bulkFor(s, rootHTTP()).Download(context.Background(), m, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if ids := idsOf(readFiles(t, res)["Patient"]); !slices.Equal(ids, female) {
			t.Fatalf("exported %v, want the patients female at the snapshot %v", ids, female)
		}
		if now := searchIDs(t, s, "", "/fhir/Patient?gender=female&_count=1000"); slices.Equal(now, female) {
			t.Fatal("the swap did not change the current versions")
		}
	}, slowExport)
}
