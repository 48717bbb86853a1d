package sqlstore

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// fixture is a small data set with known answers for every parameter type.
var fixture = []string{
	`{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Smith","given":["Zoë"]}],"gender":"female",
	  "birthDate":"1970-03-15","identifier":[{"system":"sys1","value":"A1"}],"address":[{"city":"Boston"}],
	  "telecom":[{"system":"phone","value":"555"}],"generalPractitioner":[{"reference":"Practitioner/d1"}],
	  "managingOrganization":{"reference":"Organization/o1"}}`,
	`{"resourceType":"Patient","id":"p2","active":false,"name":[{"family":"Smithson","given":["John"]}],"gender":"male",
	  "birthDate":"1980","identifier":[{"system":"sys1","value":"B2"},{"system":"sys2","value":"A1"}],"address":[{"city":"New York"}]}`,
	`{"resourceType":"Patient","id":"p3","name":[{"family":"Kovács","given":["Éva"]}],"gender":"other","birthDate":"2001-07-04"}`,
	`{"resourceType":"Practitioner","id":"d1","name":[{"family":"Who","prefix":["Dr"]}]}`,
	`{"resourceType":"Organization","id":"o1","name":"Acme Health"}`,
	`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
	  "code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"subject":{"reference":"Patient/p1"},
	  "effectiveDateTime":"2020-01-02T10:00:00Z","valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}`,
	`{"resourceType":"Observation","id":"o2","status":"amended","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},
	  "subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2020-01-01","end":"2020-01-31"},
	  "valueQuantity":{"value":70,"system":"http://unitsofmeasure.org","code":"kg"}}`,
	`{"resourceType":"Observation","id":"o3","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
	  "subject":{"reference":"Patient/p2"},"effectiveDateTime":"2021-06-01",
	  "valueQuantity":{"value":140,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}`,
	`{"resourceType":"Observation","id":"o4","status":"final","code":{"coding":[{"system":"http://other.org","code":"8480-6"}]},
	  "subject":{"reference":"Patient/p3"},"effectiveDateTime":"2019-12-31T23:30:00-02:00",
	  "valueQuantity":{"value":5,"system":"http://unitsofmeasure.org","code":"mg"}}`,
	`{"resourceType":"Observation","id":"o5","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1234-5","display":"Glucose [Mass/volume]"}],"text":"Sugar"},
	  "subject":{"reference":"http://other.org/fhir/Patient/p2"},"valueQuantity":{"value":0.005,"system":"http://unitsofmeasure.org","code":"g"}}`,
	`{"resourceType":"Encounter","id":"e1","status":"in-progress","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},
	  "period":{"start":"2020-01-01T08:00:00Z"}}`,
	`{"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/p1"},"prediction":[{"probabilityDecimal":0.25}]}`,
	`{"resourceType":"RiskAssessment","id":"r2","status":"final","subject":{"reference":"Patient/p2"},"prediction":[{"probabilityDecimal":0.5}]}`,
	`{"resourceType":"ValueSet","id":"v1","status":"active","url":"http://example.org/fhir/ValueSet/a"}`,
	`{"resourceType":"ValueSet","id":"v2","status":"active","url":"http://example.org/fhir/ValueSet/a/b"}`,
	`{"resourceType":"Observation","id":"gone","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"subject":{"reference":"Patient/p1"}}`,
}

func loadFixture(t testing.TB, s *Store) {
	for _, b := range fixture {
		put(t, s, b)
	}
	del(t, s, "Observation", "gone")
}

// ids runs a search and returns the ids of all matches, sorted.
func ids(t testing.TB, s *Store, typ, raw string, spec SearchSpec) []string {
	t.Helper()
	vals, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := search.ParseQuery(typ, vals, true)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, raw, err)
	}
	spec.Query = q
	if spec.Count == 0 {
		spec.Count = 100
	}
	page, err := s.Search(context.Background(), spec)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, raw, err)
	}
	var out []string
	for _, m := range page.Matches {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

func TestSearchParameterTypes(t *testing.T) {
	tests := []struct {
		typ, q string
		want   string
	}{
		// string: starts-with, case- and accent-insensitive; :exact; :contains; OR and AND
		{"Patient", "name=smi", "p1 p2"},
		{"Patient", "name=SMITH", "p1 p2"},
		{"Patient", "family:exact=Smith", "p1"},
		{"Patient", "family:exact=smith", ""},
		{"Patient", "name:contains=MIT", "p1 p2"},
		{"Patient", "name=zoe", "p1"},
		{"Patient", "given=%C3%A9va", "p3"},
		{"Patient", "given=eva", "p3"},
		{"Patient", "name=smith,kovacs", "p1 p2 p3"},
		{"Patient", "name=smith&gender=male", "p2"},
		{"Patient", "address-city=bos", "p1"},
		// token: code, system|code, |code, system|, :not, :text, booleans, identifiers, ContactPoint
		{"Patient", "gender=female", "p1"},
		{"Patient", "gender:not=female", "p2 p3"},
		{"Patient", "identifier=A1", "p1 p2"},
		{"Patient", "identifier=sys1|A1", "p1"},
		{"Patient", "identifier=sys2|", "p2"},
		{"Patient", "identifier=|A1", ""},
		{"Patient", "active=true", "p1"},
		{"Patient", "active=false", "p2"},
		{"Patient", "phone=555", "p1"},
		{"Observation", "code=8480-6", "o1 o3 o4"},
		{"Observation", "code=http://loinc.org|8480-6", "o1 o3"},
		{"Observation", "code=http://loinc.org|8480-6,http://loinc.org|29463-7", "o1 o2 o3"},
		{"Observation", "code:text=glucose", "o5"},
		{"Observation", "code:text=sug", "o5"},
		{"Observation", "status=final,amended", "o1 o2 o3 o4 o5"},
		{"Observation", "category=vital-signs", "o1"},
		// :missing
		{"Patient", "active:missing=true", "p3"},
		{"Patient", "active:missing=false", "p1 p2"},
		{"Observation", "category:missing=true", "o2 o3 o4 o5"},
		// date: prefixes, partial precision as ranges, Periods, time zones
		{"Patient", "birthdate=1970", "p1"},
		{"Patient", "birthdate=1970-03", "p1"},
		{"Patient", "birthdate=1980-06", ""},
		{"Patient", "birthdate=ge1980", "p2 p3"},
		{"Patient", "birthdate=gt1980", "p3"},
		{"Patient", "birthdate=lt1980", "p1"},
		{"Patient", "birthdate=le1980", "p1 p2"},
		{"Patient", "birthdate=sa1980", "p3"},
		{"Patient", "birthdate=eb1980", "p1"},
		{"Patient", "birthdate=ne1980", "p1 p3"},
		{"Patient", "birthdate=ge1970-03-15&birthdate=le1980", "p1 p2"},
		{"Observation", "date=2020-01", "o1 o2 o4"},
		{"Observation", "date=2020-01-02", "o1"},
		{"Observation", "date=ge2021", "o3"},
		{"Observation", "date=lt2020-01-02", "o2 o4"},
		{"Observation", "date=2020-01-01T01:30:00Z", "o4"},
		{"Observation", "date=2020-01-01T03:30:00%2B02:00", "o4"},
		{"Encounter", "date=ge2030", "e1"},
		{"Encounter", "date=lt2019", ""},
		// number
		{"RiskAssessment", "probability=0.25", "r1"},
		{"RiskAssessment", "probability=0.2", ""},
		{"RiskAssessment", "probability=gt0.3", "r2"},
		{"RiskAssessment", "probability=ge0.25", "r1 r2"},
		{"RiskAssessment", "probability=lt0.5", "r1"},
		// quantity: prefixes, value|system|code, ||code, canonical units
		{"Observation", "value-quantity=120", "o1"},
		{"Observation", "value-quantity=gt130", "o3"},
		{"Observation", "value-quantity=120||mm[Hg]", "o1"},
		{"Observation", "value-quantity=5|http://unitsofmeasure.org|mg", "o4 o5"},
		{"Observation", "value-quantity=lt100", "o2 o4 o5"},
		{"Observation", "value-quantity=ge120&value-quantity=le140", "o1 o3"},
		// reference: id, Type/id, absolute URL, :Type, chains, _has
		{"Observation", "subject=Patient/p1", "o1 o2"},
		{"Observation", "patient=p1", "o1 o2"},
		{"Observation", "subject:Patient=p2", "o3"},
		{"Observation", "subject=http://other.org/fhir/Patient/p2", "o5"},
		{"Patient", "organization=Organization/o1", "p1"},
		{"Patient", "general-practitioner:Practitioner=d1", "p1"},
		{"Observation", "subject:Patient.name=kovacs", "o4"},
		{"Observation", "subject:Patient.gender=male", "o3"},
		{"Observation", "patient.organization.name=acme", "o1 o2"},
		{"Patient", "organization.name=acme", "p1"},
		{"Patient", "_has:Observation:patient:code=29463-7", "p1"},
		{"Patient", "_has:Observation:subject:status=final", "p1 p2 p3"},
		{"Practitioner", "_has:Patient:general-practitioner:_has:Observation:patient:code=29463-7", "d1"},
		{"Practitioner", "_has:Patient:general-practitioner:_has:Observation:patient:code=8480-6", "d1"},
		{"Organization", "_has:Patient:organization:gender=male", ""},
		// chains and _has checked from a driving clause (correlated probes)
		{"Patient", "_has:Observation:patient:code=29463-7&gender=female", "p1"},
		{"Patient", "_has:Observation:patient:code=29463-7&gender=male", ""},
		{"Observation", "subject:Patient.name=smith&status=final", "o1 o3"},
		{"Observation", "patient.organization.name=acme&status=amended", "o2"},
		{"Observation", "patient.organization.name=acme&status=final", "o1"},
		{"Practitioner", "_has:Patient:general-practitioner:_has:Observation:patient:code=29463-7&name=who", "d1"},
		// uri
		{"ValueSet", "url=http://example.org/fhir/ValueSet/a", "v1"},
		{"ValueSet", "url:below=http://example.org/fhir/ValueSet/a", "v1 v2"},
		{"ValueSet", "url:above=http://example.org/fhir/ValueSet/a/b/c", "v1 v2"},
		// composite
		{"Observation", "code-value-quantity=http://loinc.org|8480-6$gt130", "o3"},
		{"Observation", "code-value-quantity=8480-6$lt130", "o1 o4"},
		// specials
		{"Patient", "_id=p1,p3", "p1 p3"},
		{"Observation", "_id=gone", ""},
		{"Patient", "_lastUpdated=gt2000-01-01", "p1 p2 p3"},
		{"Patient", "_lastUpdated=lt2000-01-01", ""},
		{"Observation", "", "o1 o2 o3 o4 o5"},
	}
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		loadFixture(t, s)
		for _, tt := range tests {
			t.Run(tt.typ+"?"+tt.q, func(t *testing.T) {
				got := strings.Join(ids(t, s, tt.typ, tt.q, SearchSpec{}), " ")
				if got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
	})
}

func TestSearchCompartment(t *testing.T) {
	tests := []struct{ typ, id, q, want string }{
		{"Observation", "p1", "", "o1 o2"},
		{"Observation", "p1", "code=8480-6", "o1"},
		{"Encounter", "p1", "", "e1"},
		{"Patient", "p1", "", "p1"},
		{"Observation", "nobody", "", ""},
	}
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		loadFixture(t, s)
		for _, tt := range tests {
			t.Run(tt.id+"/"+tt.typ, func(t *testing.T) {
				got := strings.Join(ids(t, s, tt.typ, tt.q, SearchSpec{CompartmentType: "Patient", CompartmentID: tt.id}), " ")
				if got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
		// a type outside the compartment is refused
		q, _, _ := search.ParseQuery("Organization", nil, true)
		_, err := s.Search(context.Background(), SearchSpec{Query: q, Count: 10, CompartmentType: "Patient", CompartmentID: "p1"})
		if fe := fhir.AsError(err); fe == nil || fe.Status != 400 {
			t.Fatalf("Organization in a Patient compartment: %v", err)
		}
	})
}

func TestSearchRestrict(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		loadFixture(t, s)
		restrict := func(raws ...string) []*search.Query {
			out := []*search.Query{}
			for _, raw := range raws {
				v, _ := url.ParseQuery(raw)
				q, _, err := search.ParseQuery("Observation", v, true)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, q)
			}
			return out
		}
		cases := []struct {
			q     string
			restr []*search.Query
			want  string
		}{
			{"", restrict("status=amended"), "o2"},
			{"", restrict("status=amended", "code=http://loinc.org|8480-6"), "o1 o2 o3"},
			{"subject=Patient/p1", restrict("code=http://loinc.org|8480-6"), "o1"},
			{"", restrict(), ""},
		}
		for _, c := range cases {
			got := strings.Join(ids(t, s, "Observation", c.q, SearchSpec{Restrict: c.restr}), " ")
			if got != c.want {
				t.Errorf("%q restricted: got %q, want %q", c.q, got, c.want)
			}
		}
	})
}
