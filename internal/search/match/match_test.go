package match

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// obs is the resource most table rows look at.
const obs = `{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","lastUpdated":"2024-05-06T07:08:09.123456Z",
  "tag":[{"system":"http://example.org/tags","code":"t1"}],"profile":["http://example.org/fhir/StructureDefinition/p"],
  "source":"http://example.org/src#a"},
  "status":"final",
  "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],
  "code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}],"text":"Blood sugar"},
  "subject":{"reference":"Patient/p1"},"performer":[{"reference":"http://example.org/fhir/Practitioner/d1"}],
  "effectiveDateTime":"2024-03-15T10:00:00Z",
  "valueQuantity":{"value":95,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},
  "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
    "valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`

func mustMatch(t *testing.T, c Compiler, typ, body string, queries ...string) bool {
	t.Helper()
	var qs []url.Values
	for _, q := range queries {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, v)
	}
	m, err := c.Compile(typ, qs)
	if err != nil {
		t.Fatalf("compile %v: %v", queries, err)
	}
	ok, err := m.Match([]byte(body))
	if err != nil {
		t.Fatalf("match %v: %v", queries, err)
	}
	return ok
}

func TestMatchTable(t *testing.T) {
	now := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	c := Compiler{Base: "http://example.org/fhir", Now: func() time.Time { return now }}
	tests := []struct {
		q    string
		want bool
	}{
		{"", true},
		{"status=final", true},
		{"status=amended", false},
		{"status:not=amended", true},
		{"status:not=final", false},
		{"category=laboratory", true},
		{"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", true},
		{"category=other|laboratory", false},
		{"category=|laboratory", false},
		{"category=http://terminology.hl7.org/CodeSystem/observation-category|", true},
		{"code:text=blood", true},
		{"code:text=gluc", true},
		{"code:text=sugar", false},
		{"category:missing=false", true},
		{"category:missing=true", false},
		{"focus:missing=true", true},
		{"focus:missing=true,false", true},
		{"date=2024-03", true},
		{"date=2024-04", false},
		{"date=gt2024-03-15T09:00:00Z", true},
		{"date=lt2024-03-15", false},
		{"date=le2024-03-15", true},
		{"date=sa2024-03-14", true},
		{"date=eb2024-03-16", true},
		{"date=ne2024-03-15", false},
		{"date=ap2024-03-10", true}, // 10% of ~80 days from now covers 5 days
		{"date=ap2023-01-01", false},
		{"value-quantity=95", true},
		{"value-quantity=gt95", false},
		{"value-quantity=ge95", true},
		{"value-quantity=95|http://unitsofmeasure.org|mg/dL", true},
		{"value-quantity=0.95|http://unitsofmeasure.org|g/L", true}, // canonical units
		{"value-quantity=95||mg/dL", true},
		{"value-quantity=95|http://unitsofmeasure.org|kg", false},
		{"component-value-quantity=120", true},
		{"component-code-value-quantity=http://loinc.org|8480-6$120", true},
		{"component-code-value-quantity=http://loinc.org|8480-6$130", false},
		{"subject=Patient/p1", true},
		{"subject=p1", true},
		{"subject:Patient=p1", true},
		{"subject:Group=p1", false},
		{"subject=Patient/p2", false},
		{"performer=http://example.org/fhir/Practitioner/d1", false}, // localized to Practitioner/d1, which the index does not hold
		{"_id=o1", true},
		{"_id=o2,o1", true},
		{"_id:not=o1", false},
		{"_id:missing=false", true},
		{"_id:missing=true", false},
		{"_lastUpdated=2024-05-06", true},
		{"_lastUpdated:missing=false", true},
		{"_lastUpdated:missing=true", false},
		{"_lastUpdated=gt2024-05-06T07:08:09.123456Z", false},
		{"_lastUpdated=ge2024-05-06T07:08:09.123456Z", true},
		{"_tag=http://example.org/tags|t1", true},
		{"_tag=t2", false},
		{"_profile=http://example.org/fhir/StructureDefinition/p", true},
		{"_source=http://example.org/src#a", true},
		{"_source:below=http://example.org/", true},
		{"_source:above=http://example.org/src#a/more", true},
		{"_source:above=http://example.org/", false},
		{"_security:missing=true", true},
		{"status=final&category=vital-signs", false},
		{"status=final&category=vital-signs,laboratory", true},
		{"status=final&status=amended", false},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := mustMatch(t, c, "Observation", obs, tt.q); got != tt.want {
				t.Fatalf("Observation?%s = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestMatchStringsAndQueriesOr(t *testing.T) {
	p := `{"resourceType":"Patient","id":"p1","name":[{"family":"Kovács","given":["Éva","Zoë"]}],
	  "address":[{"city":"Boston"}],"birthDate":"1970-03"}`
	tests := []struct {
		queries []string
		want    bool
	}{
		{[]string{"name=kov"}, true},
		{[]string{"name=KOVACS"}, true},
		{[]string{"family:exact=Kovács"}, true},
		{[]string{"family:exact=kovács"}, false},
		{[]string{"name:contains=vac"}, true},
		{[]string{"given=zo"}, true},
		{[]string{"given=oe"}, false},
		{[]string{"address-city=bos"}, true},
		{[]string{"birthdate=1970"}, true},        // the range of 1970-03 lies in 1970
		{[]string{"birthdate=1970-03-15"}, false}, // March is wider than its 15th
		{[]string{"birthdate=ap1970-03-15"}, true},
		{[]string{"gender=male", "name=kov"}, true},
		{[]string{"gender=male", "name=smi"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.queries, " OR "), func(t *testing.T) {
			if got := mustMatch(t, Compiler{}, "Patient", p, tt.queries...); got != tt.want {
				t.Fatalf("%v = %v, want %v", tt.queries, got, tt.want)
			}
		})
	}
}

// TestDateIntervals: the lower and upper bounds of one date parameter
// are one interval that a single date must fall in, as the search engine
// reads them; other prefixes, and bounds of different parameters, stay
// separate.
func TestDateIntervals(t *testing.T) {
	timing := `{"resourceType":"Observation","id":"t","status":"final","code":{"text":"x"},
	  "effectiveTiming":{"event":["2022-02-02","2022-03-03"]},"valueDateTime":"2022-02-15"}`
	tests := []struct {
		q    string
		want bool
	}{
		{"date=ge2022-02-10", true},
		{"date=le2022-02-20", true},
		{"date=ge2022-02-10&date=le2022-02-20", false}, // no single event in between
		{"date=ge2022-02-01&date=le2022-02-20", true},
		{"date=gt2022-02-02&date=lt2022-03-03", false},
		{"date=ge2022-02-02&date=lt2022-03-03", true},
		{"date=ge2022&date=le2022-02-20&date=gt2022-02-05", false},
		{"date=ge2022-02-10&date=le2022-02-20&value-date=2022-02-15", false},
		{"date=ge2022-02-10&value-date=le2022-02-20", true},        // different parameters
		{"date=ge2022-02-10,ge2022-01-01&date=le2022-02-20", true}, // two values: not a bound
		{"date=ne2022-02-10&date=le2022-02-20", true},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := mustMatch(t, Compiler{}, "Observation", timing, tt.q); got != tt.want {
				t.Fatalf("%s = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestCompileRefusals(t *testing.T) {
	tests := []struct {
		typ, q string
		status int
		code   fhir.IssueType
		want   string // in the diagnostics
	}{
		{"Observation", "subject:Patient.name=x", 400, fhir.IssueNotSupported, `"subject:Patient.name" cannot be evaluated on a single resource: a chained parameter`},
		{"Observation", "patient.birthdate=2000", 400, fhir.IssueNotSupported, `"patient.birthdate" cannot be evaluated on a single resource`},
		{"Patient", "_has:Observation:patient:code=1234-5", 400, fhir.IssueNotSupported, `"_has:Observation:patient:code" cannot be evaluated on a single resource: _has`},
		{"Observation", "_count=10", 400, fhir.IssueInvalid, `"_count": a filter on Observation cannot use result parameters`},
		{"Observation", "_sort=date", 400, fhir.IssueInvalid, `"_sort"`},
		{"Observation", "_include=Observation:subject", 400, fhir.IssueInvalid, `"_include"`},
		{"Observation", "_revinclude=Provenance:target", 400, fhir.IssueInvalid, `"_revinclude"`},
		{"Observation", "_summary=true", 400, fhir.IssueInvalid, `"_summary"`},
		{"Observation", "_elements=status", 400, fhir.IssueInvalid, `"_elements"`},
		{"Observation", "_total=accurate", 400, fhir.IssueInvalid, `"_total"`},
		{"Observation", "_offset=5", 400, fhir.IssueInvalid, `"_offset"`},
		{"Observation", "_cursor=abc", 400, fhir.IssueInvalid, `"_cursor"`},
		{"Observation", "_text=x", 400, fhir.IssueNotSupported, `"_text" is not supported`},
		{"Observation", "_content=x", 400, fhir.IssueNotSupported, `"_content" is not supported`},
		{"Observation", "_filter=x", 400, fhir.IssueNotSupported, `"_filter" is not supported`},
		{"Observation", "_list=x", 400, fhir.IssueNotSupported, `"_list" is not supported`},
		{"Observation", "_type=Patient", 400, fhir.IssueNotSupported, `"_type" is not supported`},
		{"Observation", "_query=x", 400, fhir.IssueNotSupported, `"_query" is not supported`},
		{"Observation", "nonsense=1", 400, fhir.IssueNotSupported, `"nonsense" is unknown for Observation`},
		{"Location", "near=42.3|-71.0|10|km", 400, fhir.IssueNotSupported, `"near" cannot be evaluated on a single resource`},
		{"Observation", "date=2024-13", 400, fhir.IssueInvalid, `"date": invalid date "2024-13"`},
		{"Observation", "code:in=http://x/vs", 400, fhir.IssueNotSupported, `"code:in": modifier :in is not supported`},
		{"Observation", "status:bogus=final", 400, fhir.IssueInvalid, `"status:bogus": unknown modifier`},
		{"Observation", "value-quantity=xx5", 400, fhir.IssueInvalid, `"value-quantity": unknown prefix "xx"`},
		{"Observation", "subject=Practitioner/1", 400, fhir.IssueInvalid, `Practitioner is not a target type of subject`},
		{"Foo", "x=1", 400, fhir.IssueInvalid, `unknown resource type "Foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"?"+tt.q, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.q)
			_, err := Compile(tt.typ, []url.Values{{}, v})
			fe := fhir.AsError(err)
			if fe == nil {
				t.Fatalf("err = %v, want a *fhir.Error", err)
			}
			if fe.Status != tt.status || fe.Code != tt.code || !strings.Contains(fe.Diagnostics, tt.want) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", fe.Status, fe.Code, fe.Diagnostics, tt.status, tt.code, tt.want)
			}
		})
	}
}

func TestMatchBadBodies(t *testing.T) {
	m, err := Compile("Observation", []url.Values{{"status": {"final"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"not JSON":   `{"resourceType":`,
		"array":      `[1]`,
		"other type": `{"resourceType":"Patient","id":"p"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if ok, err := m.Match([]byte(body)); err == nil || ok {
				t.Fatalf("Match = %v, %v; want an error", ok, err)
			}
		})
	}
}

func TestContextMatcherStopsWhenDone(t *testing.T) {
	m, err := Compile("Observation", []url.Values{{}})
	if err != nil {
		t.Fatal(err)
	}
	cm := ContextMatcher{M: m}
	if ok, err := cm.Match(context.Background(), []byte(obs)); !ok || err != nil {
		t.Fatalf("Match = %v, %v", ok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cm.Match(ctx, []byte(obs)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCache(t *testing.T) {
	c := &Cache{}
	qs := []url.Values{{"category": {"laboratory"}}}
	m1, err := c.Matcher("Observation", qs)
	if err != nil {
		t.Fatal(err)
	}
	if m2, _ := c.Matcher("Observation", []url.Values{{"category": {"laboratory"}}}); m2 != m1 {
		t.Fatal("the same queries compiled twice")
	}
	if m3, _ := c.Matcher("Observation", []url.Values{{"category": {"vital-signs"}}}); m3 == m1 {
		t.Fatal("different queries share a matcher")
	}
	ap := []url.Values{{"date": {"ap2024"}}}
	if a1, _ := c.Matcher("Observation", ap); a1 == nil {
		t.Fatal("no matcher")
	} else if a2, _ := c.Matcher("Observation", ap); a1 == a2 {
		t.Fatal("a matcher that depends on the clock was kept")
	}
	if _, err := c.Matcher("Observation", []url.Values{{"subject.name": {"x"}}}); fhir.AsError(err) == nil {
		t.Fatalf("refusal: %v", err)
	}
	ok, err := c.MatchResource(context.Background(), "Observation", qs, []byte(obs))
	if !ok || err != nil {
		t.Fatalf("MatchResource = %v, %v", ok, err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				q := []url.Values{{"status": {"final"}, "_id": {"id" + strconv.Itoa((i*200+j)%40)}}}
				if _, err := c.MatchResource(context.Background(), "Observation", q, []byte(obs)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
