package search

import (
	"net/url"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
)

// FuzzParseQuery checks that no query string panics the parser, that every
// refusal is a 400 *fhir.Error naming a parameter, and that every accepted
// clause is complete. Run: go test -fuzz FuzzParseQuery ./internal/search
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"name=Zo%C3%AB&name:exact=Eve,Ann",
		"identifier=http://x|123&gender:not=male&code:text=bp",
		"date=ge2020-01-01T10:00:00%2B02:00&birthdate=2020-02",
		"value-quantity=le5.4|http://unitsofmeasure.org|mg&probability=gt0.8",
		"subject:Patient.name=peter&patient.organization.name=x",
		"_has:Observation:patient:_has:Provenance:target:agent=Practitioner/1",
		"code-value-quantity=http://loinc.org|8480-6$gt100",
		"_count=10&_sort=-date,_id&_include:iterate=Observation:patient&_elements=status",
		`name=a\,b\|c\$d\\&url:below=http://a/`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, strict bool) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, typ := range []string{"Observation", "Patient"} {
			q, warn, err := ParseQuery(typ, vals, strict)
			if err != nil {
				fe := fhir.AsError(err)
				if fe == nil || fe.Status != 400 || fe.Diagnostics == "" {
					t.Fatalf("%s %q: error %v is not a 400 *fhir.Error", typ, raw, err)
				}
				continue
			}
			if strict && len(warn) != 0 {
				t.Fatalf("%q: strict parse returned warnings %v", raw, warn)
			}
			for _, c := range q.Where {
				checkClause(t, raw, c)
			}
		}
	})
}

func checkClause(t *testing.T, raw string, c Clause) {
	t.Helper()
	for c.Has != nil {
		c = c.Has.Clause
	}
	if c.Param == nil || len(c.Types) == 0 || len(c.Values) == 0 {
		t.Fatalf("%q: incomplete clause %+v", raw, c)
	}
	for _, v := range c.Values {
		if v.Type != c.Param.Type {
			t.Fatalf("%q: value type %s for a %s parameter", raw, v.Type, c.Param.Type)
		}
		if v.Type == TypeComposite && c.Modifier != ModifierMissing && len(v.Parts) != len(c.Param.Components) {
			t.Fatalf("%q: composite with %d parts", raw, len(v.Parts))
		}
	}
}
