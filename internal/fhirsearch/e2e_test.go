package fhirsearch_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

func eachServer(t *testing.T, fn func(t *testing.T, s *ts.Server)) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		fn(t, ts.Start(t, newURL(t)))
	})
}

func putRes(t *testing.T, s *ts.Server, typ, id, body string) {
	t.Helper()
	r := s.Do(ts.Req{Method: "PUT", Path: "/fhir/" + typ + "/" + id, Body: body})
	if r.StatusCode != 200 && r.StatusCode != 201 {
		t.Fatalf("PUT %s/%s: %d %s", typ, id, r.StatusCode, r.Body)
	}
}

// bundle is the part of a searchset the tests read.
type bundle struct {
	total   any
	links   map[string]string
	entries []map[string]any
}

func get(t *testing.T, s *ts.Server, path string, header ...string) bundle {
	t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	m := s.Do(ts.Req{Method: "GET", Path: path, Header: h}).Expect(t, 200).JSON(t)
	if m["resourceType"] != "Bundle" || m["type"] != "searchset" {
		t.Fatalf("%s: not a searchset: %v", path, m)
	}
	b := bundle{total: m["total"], links: map[string]string{}}
	for _, l := range asList(m["link"]) {
		lm := l.(map[string]any)
		b.links[lm["relation"].(string)] = lm["url"].(string)
	}
	for _, e := range asList(m["entry"]) {
		b.entries = append(b.entries, e.(map[string]any))
	}
	return b
}

func asList(v any) []any { l, _ := v.([]any); return l }

// ids lists "Type/id" of the entries with the given search mode.
func (b bundle) ids(mode string) []string {
	var out []string
	for _, e := range b.entries {
		if e["search"].(map[string]any)["mode"] != mode {
			continue
		}
		r := e["resource"].(map[string]any)
		out = append(out, r["resourceType"].(string)+"/"+r["id"].(string))
	}
	return out
}

// relative turns an absolute link into a path for Server.Do.
func relative(s *ts.Server, link string) string { return strings.TrimPrefix(link, s.URL) }

func obs(id, patient, date, code string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","code":{"coding":[{"system":"http://loinc.org","code":%q}]},
		"subject":{"reference":"Patient/%s"},"encounter":{"reference":"Encounter/e-%s"},"effectiveDateTime":%q}`, id, code, patient, patient, date)
}

func seedSmall(t *testing.T, s *ts.Server) {
	for _, p := range []string{"a", "b", "c"} {
		putRes(t, s, "Patient", p, `{"resourceType":"Patient","id":"`+p+`","name":[{"family":"Fam`+p+`"}],"managingOrganization":{"reference":"Organization/org"}}`)
		putRes(t, s, "Encounter", "e-"+p, `{"resourceType":"Encounter","id":"e-`+p+`","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/`+p+`"}}`)
	}
	putRes(t, s, "Organization", "org", `{"resourceType":"Organization","id":"org","name":"Org"}`)
	for i := 0; i < 7; i++ {
		p := []string{"a", "b", "c"}[i%3]
		putRes(t, s, "Observation", fmt.Sprintf("o%d", i), obs(fmt.Sprintf("o%d", i), p, fmt.Sprintf("2020-01-%02dT00:00:00Z", 10-i), "8480-6"))
	}
}

func TestPagingStableUnderWrites(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		p1 := get(t, s, "/fhir/Observation?code=8480-6&_count=3")
		if len(p1.ids("match")) != 3 || p1.links["next"] == "" || p1.links["previous"] != "" || p1.total != nil {
			t.Fatalf("page 1: %v %v total %v", p1.ids("match"), p1.links, p1.total)
		}
		if !strings.HasPrefix(p1.links["self"], s.URL+"/fhir/Observation?") {
			t.Fatalf("self %q", p1.links["self"])
		}
		// a write between pages neither shifts nor repeats results
		putRes(t, s, "Observation", "o-new", obs("o-new", "a", "2020-01-20T00:00:00Z", "8480-6"))
		p2 := get(t, s, relative(s, p1.links["next"]))
		p3 := get(t, s, relative(s, p2.links["next"]))
		all := slices.Concat(p1.ids("match"), p2.ids("match"), p3.ids("match"))
		seen := map[string]bool{}
		for _, id := range all {
			if seen[id] {
				t.Fatalf("%s repeated across pages: %v", id, all)
			}
			seen[id] = true
		}
		if len(p2.ids("match")) != 3 || p2.links["previous"] == "" {
			t.Fatalf("page 2: %v %v", p2.ids("match"), p2.links)
		}
		// previous of page 2 is page 1 again
		back := get(t, s, relative(s, p2.links["previous"]))
		if !slices.Equal(back.ids("match"), p1.ids("match")) || back.links["previous"] != "" {
			t.Fatalf("previous of page 2: %v, page 1 was %v (links %v)", back.ids("match"), p1.ids("match"), back.links)
		}
		// the new resource (a higher rid) comes last, once
		if len(all) != 8 || !seen["Observation/o-new"] {
			t.Fatalf("pages: %v", all)
		}
	})
}

func TestSortTotalSummary(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		// -date: o6 is the earliest, so it comes last; two keys page correctly
		var got []string
		path := "/fhir/Observation?_sort=-date,_id&_count=2"
		for path != "" {
			b := get(t, s, path)
			got = append(got, b.ids("match")...)
			path = relative(s, b.links["next"])
		}
		want := []string{"Observation/o0", "Observation/o1", "Observation/o2", "Observation/o3", "Observation/o4", "Observation/o5", "Observation/o6"}
		if !slices.Equal(got, want) {
			t.Fatalf("_sort=-date: %v", got)
		}
		asc := get(t, s, "/fhir/Observation?_sort=date&_count=3")
		if !slices.Equal(asc.ids("match"), []string{"Observation/o6", "Observation/o5", "Observation/o4"}) {
			t.Fatalf("_sort=date: %v", asc.ids("match"))
		}
		byID := get(t, s, "/fhir/Patient?_sort=-_id")
		if !slices.Equal(byID.ids("match"), []string{"Patient/c", "Patient/b", "Patient/a"}) {
			t.Fatalf("_sort=-_id: %v", byID.ids("match"))
		}
		lu := get(t, s, "/fhir/Patient?_sort=-_lastUpdated&_count=1")
		if !slices.Equal(lu.ids("match"), []string{"Patient/c"}) {
			t.Fatalf("_sort=-_lastUpdated: %v", lu.ids("match"))
		}
		// _total
		if b := get(t, s, "/fhir/Observation?_count=2&_total=accurate"); b.total != float64(7) || len(b.entries) != 2 {
			t.Fatalf("_total=accurate: %v, %d entries", b.total, len(b.entries))
		}
		// estimate counts too (a count over the index is cheap); none
		// leaves the total out of a page that does not hold every match
		if b := get(t, s, "/fhir/Observation?_count=2&_total=estimate"); b.total != float64(7) || len(b.entries) != 2 {
			t.Fatalf("_total=estimate: %v, %d entries", b.total, len(b.entries))
		}
		if b := get(t, s, "/fhir/Observation?_count=2&_total=none"); b.total != nil || len(b.entries) != 2 || b.links["next"] == "" {
			t.Fatalf("_total=none: %v, %d entries, links %v", b.total, len(b.entries), b.links)
		}
		if b := get(t, s, "/fhir/Observation"); b.total != float64(7) {
			t.Fatalf("a first page that holds everything reports its total: %v", b.total)
		}
		// _summary=count: the total alone
		if b := get(t, s, "/fhir/Observation?_summary=count"); b.total != float64(7) || len(b.entries) != 0 {
			t.Fatalf("_summary=count: %v %v", b.total, b.entries)
		}
		// _elements and _summary mark SUBSETTED
		for _, q := range []string{"_elements=status", "_summary=text"} {
			b := get(t, s, "/fhir/Observation?_count=1&"+q)
			r := b.entries[0]["resource"].(map[string]any)
			tags := fmt.Sprint(r["meta"].(map[string]any)["tag"])
			if !strings.Contains(tags, "SUBSETTED") || r["effectiveDateTime"] != nil || r["status"] != "final" {
				t.Fatalf("%s: %v", q, r)
			}
		}
	})
}

func TestIncludes(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		b := get(t, s, "/fhir/Observation?_id=o0,o3&_include=Observation:subject")
		if got := b.ids("include"); !slices.Equal(got, []string{"Patient/a"}) || len(b.ids("match")) != 2 {
			t.Fatalf("_include: matches %v includes %v", b.ids("match"), got)
		}
		b = get(t, s, "/fhir/Patient?_id=b&_revinclude=Observation:subject")
		inc := b.ids("include")
		slices.Sort(inc)
		if !slices.Equal(inc, []string{"Observation/o1", "Observation/o4"}) {
			t.Fatalf("_revinclude: %v", inc)
		}
		// :iterate follows the included encounters to their patients' organization
		b = get(t, s, "/fhir/Observation?_id=o2&_include=Observation:encounter&_include:iterate=Encounter:subject&_include:iterate=Patient:organization")
		inc = b.ids("include")
		slices.Sort(inc)
		if !slices.Equal(inc, []string{"Encounter/e-c", "Organization/org", "Patient/c"}) {
			t.Fatalf(":iterate: %v", inc)
		}
		// without :iterate, the second hop is not followed
		b = get(t, s, "/fhir/Observation?_id=o2&_include=Observation:encounter&_include=Encounter:subject")
		if inc = b.ids("include"); !slices.Equal(inc, []string{"Encounter/e-c"}) {
			t.Fatalf("no iterate: %v", inc)
		}
	})
}

func TestSearchForms(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		// POST _search with a form body, merged with the URL's parameters
		r := s.Do(ts.Req{Method: "POST", Path: "/fhir/Observation/_search?_count=10",
			Body: "subject=Patient/a&code=8480-6", Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, 200)
		if n := len(asList(r.JSON(t)["entry"])); n != 3 {
			t.Fatalf("POST _search: %d entries\n%s", n, r.Body)
		}
		// compartment search
		b := get(t, s, "/fhir/Patient/b/Observation")
		if got := b.ids("match"); !slices.Equal(got, []string{"Observation/o1", "Observation/o4"}) {
			t.Fatalf("compartment: %v", got)
		}
		if !strings.HasPrefix(b.links["self"], s.URL+"/fhir/Patient/b/Observation") {
			t.Fatalf("compartment self link %q", b.links["self"])
		}
		// chained
		b = get(t, s, "/fhir/Observation?subject:Patient.family=famc&_count=10")
		if len(b.ids("match")) != 2 {
			t.Fatalf("chain: %v", b.ids("match"))
		}
		// absolute reference under this server's base
		b = get(t, s, "/fhir/Observation?subject="+url.QueryEscape(s.URL+"/fhir/Patient/a"))
		if len(b.ids("match")) != 3 {
			t.Fatalf("absolute local reference: %v", b.ids("match"))
		}
	})
}

func TestSearchErrors(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		// an unknown parameter is ignored and reported with search.mode outcome
		b := get(t, s, "/fhir/Patient?foo=bar")
		if len(b.ids("match")) != 3 {
			t.Fatalf("unknown parameter: %v", b.ids("match"))
		}
		last := b.entries[len(b.entries)-1]
		if last["search"].(map[string]any)["mode"] != "outcome" || !strings.Contains(fmt.Sprint(last["resource"]), `"foo"`) &&
			!strings.Contains(fmt.Sprint(last["resource"]), "foo") {
			t.Fatalf("outcome entry: %v", last)
		}
		cases := []struct {
			path, prefer string
			status       int
			diag         string
		}{
			{"/fhir/Patient?foo=bar", "handling=strict", 400, `search parameter "foo" is unknown for Patient`},
			{"/fhir/Patient?birthdate=2020-13", "", 400, `search parameter "birthdate": invalid date "2020-13"`},
			{"/fhir/Patient?birthdate=xx2020", "", 400, `search parameter "birthdate": unknown prefix "xx"`},
			{"/fhir/Patient?name:fuzzy=a", "", 400, `search parameter "name:fuzzy": unknown modifier :fuzzy`},
			{"/fhir/Patient?_count=-1", "", 400, `search parameter "_count": wants a non-negative integer, got "-1"`},
			{"/fhir/Patient?_cursor=garbage", "", 400, `_cursor="garbage" is not a position of this search; start again from the first page`},
			{"/fhir/Patient?_sort=nonsense", "handling=strict", 400, `search parameter "_sort" cannot sort by "nonsense"`},
			{"/fhir/Organization/x/Observation", "", 404, "compartment search is supported for the Patient compartment only, not Organization"},
			{"/fhir/Patient/a/Organization", "", 400, "Organization resources are never in a Patient compartment"},
		}
		for _, c := range cases {
			h := map[string]string{}
			if c.prefer != "" {
				h["Prefer"] = c.prefer
			}
			r := s.Do(ts.Req{Method: "GET", Path: c.path, Header: h}).Expect(t, c.status)
			if d := r.Outcome(t); d != c.diag {
				t.Errorf("%s: diagnostics %q, want %q", c.path, d, c.diag)
			}
		}
	})
}

func TestConditionalInteractions(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		pat := func(id, ident string) string {
			return `{"resourceType":"Patient"` + id + `,"identifier":[{"system":"urn:s","value":"` + ident + `"}],"name":[{"family":"Cond"}]}`
		}
		hdr := map[string]string{"If-None-Exist": "identifier=urn:s|1"}
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: pat("", "1"), Header: hdr}).Expect(t, 201)
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: pat("", "1"), Header: hdr}).Expect(t, 200)
		// If-None-Exist on any search parameter, here a string
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Patient", Body: pat("", "2"), Header: map[string]string{"If-None-Exist": "family=cond"}}).Expect(t, 200)
		// conditional update: no match creates, one match updates
		c := s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient?identifier=urn:s|9", Body: pat("", "9")}).Expect(t, 201).JSON(t)
		u := s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient?identifier=urn:s|9", Body: pat("", "9")}).Expect(t, 200).JSON(t)
		if c["id"] != u["id"] || u["meta"].(map[string]any)["versionId"] != "2" {
			t.Fatalf("conditional update: created %v, updated %v", c["id"], u)
		}
		r := s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient?identifier=urn:s|9", Body: pat(`,"id":"other"`, "9")}).Expect(t, 400)
		if d := r.Outcome(t); !strings.Contains(d, `differs from the id`) {
			t.Fatalf("id mismatch: %q", d)
		}
		// several matches: 412
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient?family=cond", Body: pat("", "3")}).Expect(t, 412)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient?family=cond"}).Expect(t, 412)
		// strict criteria: an unknown parameter is refused, not ignored
		r = s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient?bogus=1"}).Expect(t, 400)
		if d := r.Outcome(t); !strings.Contains(d, `"bogus"`) {
			t.Fatalf("unknown criteria: %q", d)
		}
		// conditional delete of one match, then of none
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient?identifier=urn:s|9"}).Expect(t, 204)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient/" + c["id"].(string)}).Expect(t, 410)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Patient?identifier=urn:s|9"}).Expect(t, 204)
	})
}

func TestCapabilityStatement(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		m := s.Do(ts.Req{Method: "GET", Path: "/fhir/metadata", Auth: "none"}).Expect(t, 200).JSON(t)
		for _, r := range asList(asList(m["rest"])[0].(map[string]any)["resource"]) {
			res := r.(map[string]any)
			if res["type"] != "Observation" {
				continue
			}
			if res["conditionalUpdate"] != true || res["conditionalDelete"] != "single" {
				t.Fatalf("conditional flags: %v %v", res["conditionalUpdate"], res["conditionalDelete"])
			}
			all := fmt.Sprint(res["searchParam"], res["searchInclude"], res["searchRevInclude"], res["interaction"])
			for _, want := range []string{"code-value-quantity", "Observation:subject", "DiagnosticReport:result", "search-type"} {
				if !strings.Contains(all, want) {
					t.Errorf("CapabilityStatement Observation lacks %q", want)
				}
			}
			return
		}
		t.Fatal("no Observation in the CapabilityStatement")
	})
}

func TestReindexOperation(t *testing.T) {
	eachServer(t, func(t *testing.T, s *ts.Server) {
		seedSmall(t, s)
		s.Do(ts.Req{Method: "GET", Path: "/fhir/$reindex", Auth: "none"}).Expect(t, 401)
		st := s.Do(ts.Req{Method: "GET", Path: "/fhir/$reindex"}).Expect(t, 200).JSON(t)
		if st["resourceType"] != "Parameters" || st["parameter"] != nil {
			t.Fatalf("status of a current index: %v", st)
		}
		res := s.Do(ts.Req{Method: "POST", Path: "/fhir/$reindex?_type=Patient"}).Expect(t, 200).JSON(t)
		if got := fmt.Sprint(res["parameter"]); !strings.Contains(got, "valueInteger:3") || !strings.Contains(got, "valueString:Patient") {
			t.Fatalf("POST $reindex: %v", res)
		}
		r := s.Do(ts.Req{Method: "POST", Path: "/fhir/$reindex?_type=Nope"}).Expect(t, 400)
		if d := r.Outcome(t); d != `_type: "Nope" is not a resource type` {
			t.Fatalf("bad type: %q", d)
		}
		if b := get(t, s, "/fhir/Patient?name=fama"); len(b.ids("match")) != 1 {
			t.Fatalf("search after reindex: %v", b.ids("match"))
		}
	})
}
