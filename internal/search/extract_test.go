package search

import (
	"slices"
	"strconv"
	"testing"
)

const patientJSON = `{"resourceType":"Patient","id":"p1",
"meta":{"lastUpdated":"2024-05-06T07:08:09.123+02:00","tag":[{"system":"http://t","code":"x"}],
  "profile":["http://p"],"security":[{"system":"http://s","code":"R"}],"source":"http://src"},
"active":true,"gender":"female","birthDate":"1970-03","deceasedDateTime":"2020-01-01T00:30:00+01:00",
"name":[{"family":"Zoë","given":["Ann","Marie"],"text":"Ann Zoë"}],
"telecom":[{"system":"email","value":"A@B.org"},{"system":"phone","value":"555"}],
"identifier":[{"system":"http://id","value":"123","type":{"text":"MRN"}}],
"address":[{"city":"Köln","line":["Main St 1"]}],
"generalPractitioner":[{"reference":"Practitioner/dr1"},{"reference":"http://other.org/fhir/Organization/o1"},{"reference":"#c1"}],
"managingOrganization":{"reference":"urn:uuid:1234"}}`

func extract(t *testing.T, typ, body string) *Rows {
	t.Helper()
	rows, err := Extract(typ, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func stringsOf(r *Rows, param string) []string {
	var out []string
	for _, s := range r.Strings {
		if s.Param == param {
			out = append(out, s.Norm+"|"+s.Exact)
		}
	}
	return out
}

func tokensOf(r *Rows, param string) []TokenValue {
	var out []TokenValue
	for _, s := range r.Tokens {
		if s.Param == param {
			out = append(out, s.TokenValue)
		}
	}
	return out
}

func datesOf(r *Rows, param string) []DateRange {
	var out []DateRange
	for _, s := range r.Dates {
		if s.Param == param {
			out = append(out, s.DateRange)
		}
	}
	return out
}

func refsOf(r *Rows, param string) []ReferenceValue {
	var out []ReferenceValue
	for _, s := range r.References {
		if s.Param == param {
			out = append(out, s.ReferenceValue)
		}
	}
	return out
}

func quantitiesOf(r *Rows, param string) []QuantityValue {
	var out []QuantityValue
	for _, s := range r.Quantities {
		if s.Param == param {
			out = append(out, s.QuantityValue)
		}
	}
	return out
}

func TestExtractPatient(t *testing.T) {
	r := extract(t, "Patient", patientJSON)
	strs := []struct {
		param string
		want  []string
	}{
		{"name", []string{"ann zoe|Ann Zoë", "zoe|Zoë", "ann|Ann", "marie|Marie"}},
		{"family", []string{"zoe|Zoë"}},
		{"address-city", []string{"koln|Köln"}},
		{"address", []string{"main st 1|Main St 1", "koln|Köln"}},
	}
	for _, tt := range strs {
		if got := stringsOf(r, tt.param); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.param, got, tt.want)
		}
	}
	toks := []struct {
		param string
		want  []TokenValue
	}{
		{"_id", []TokenValue{{Code: "p1"}}},
		{"gender", []TokenValue{{Code: "female"}}},
		{"active", []TokenValue{{Code: "true"}}},
		{"deceased", []TokenValue{{Code: "true"}}},
		{"email", []TokenValue{{System: "email", Code: "A@B.org"}}},
		{"phone", []TokenValue{{System: "phone", Code: "555"}}},
		{"identifier", []TokenValue{{System: "http://id", Code: "123", Text: "mrn"}}},
		{"_tag", []TokenValue{{System: "http://t", Code: "x"}}},
		{"_security", []TokenValue{{System: "http://s", Code: "R"}}},
	}
	for _, tt := range toks {
		if got := tokensOf(r, tt.param); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.param, got, tt.want)
		}
	}
	dates := []struct {
		param string
		want  DateRange
	}{
		{"birthdate", DateRange{utc("1970-03-01T00:00:00Z"), utc("1970-03-31T23:59:59.999999Z")}},
		{"death-date", DateRange{utc("2019-12-31T23:30:00Z"), utc("2019-12-31T23:30:00.999999Z")}},
		{"_lastUpdated", DateRange{utc("2024-05-06T05:08:09.123Z"), utc("2024-05-06T05:08:09.123999Z")}},
	}
	for _, tt := range dates {
		if got := datesOf(r, tt.param); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.param, got, tt.want)
		}
	}
	wantGP := []ReferenceValue{{Type: "Practitioner", ID: "dr1"},
		{Type: "Organization", ID: "o1", URL: "http://other.org/fhir/Organization/o1"}}
	if got := refsOf(r, "general-practitioner"); !slices.Equal(got, wantGP) {
		t.Errorf("general-practitioner %+v, want %+v (the #c1 local reference skipped)", got, wantGP)
	}
	if got := refsOf(r, "organization"); !slices.Equal(got, []ReferenceValue{{URL: "urn:uuid:1234"}}) {
		t.Errorf("organization %+v", got)
	}
	var uris []string
	for _, u := range r.URIs {
		uris = append(uris, u.Param+"="+u.URI)
	}
	if !slices.Equal(uris, []string{"_profile=http://p", "_source=http://src"}) {
		t.Errorf("uris %v", uris)
	}
}

const observationJSON = `{"resourceType":"Observation","id":"o1","status":"final",
"code":{"coding":[{"system":"http://loinc.org","code":"8480-6","display":"Systolic"}],"text":"BP sys"},
"subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2020-01-01"},
"valueQuantity":{"value":120.50,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"},
"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},
  "valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`

func TestExtractObservation(t *testing.T) {
	r := extract(t, "Observation", observationJSON)
	if got := refsOf(r, "patient"); !slices.Equal(got, []ReferenceValue{{Type: "Patient", ID: "p1"}}) {
		t.Errorf("patient %+v", got)
	}
	wantCode := []TokenValue{{System: "http://loinc.org", Code: "8480-6", Text: "systolic"}, {Text: "bp sys"}}
	if got := tokensOf(r, "code"); !slices.Equal(got, wantCode) {
		t.Errorf("code %+v", got)
	}
	if got := datesOf(r, "date"); len(got) != 1 || got[0] != (DateRange{utc("2020-01-01T00:00:00Z"), MaxDate}) {
		t.Errorf("date (open period) %+v", got)
	}
	q := quantitiesOf(r, "value-quantity")
	if len(q) != 1 || q[0].Value != 120.5 || !near(q[0].Low, 120.495) || !near(q[0].High, 120.505) ||
		q[0].System != "http://unitsofmeasure.org" || q[0].Code != "mm[Hg]" || q[0].Unit != "mmHg" {
		t.Errorf("value-quantity %+v", q)
	}
	comps := map[string][]string{}
	for _, c := range r.Composites {
		comps[c.Param] = append(comps[c.Param], c.Parts[0].Token.Code+"="+fmtNum(c.Parts[1].Quantity.Value))
	}
	want := map[string][]string{
		"code-value-quantity":           {"8480-6=120.5"},
		"component-code-value-quantity": {"8462-4=80"},
		"combo-code-value-quantity":     {"8480-6=120.5", "8462-4=80"},
	}
	for k, v := range want {
		if !slices.Equal(comps[k], v) {
			t.Errorf("%s: %v, want %v", k, comps[k], v)
		}
	}
	if len(comps) != len(want) {
		t.Errorf("composites %v", comps)
	}
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestExtractResolveIs(t *testing.T) {
	tests := []struct {
		name, typ, body string
		param           string
		want            []ReferenceValue
	}{
		{"group subject is not a patient", "Observation",
			`{"resourceType":"Observation","subject":{"reference":"Group/g1"}}`, "patient", nil},
		{"group subject is a subject", "Observation",
			`{"resourceType":"Observation","subject":{"reference":"Group/g1"}}`, "subject", []ReferenceValue{{Type: "Group", ID: "g1"}}},
		{"absolute patient url", "Encounter",
			`{"resourceType":"Encounter","subject":{"reference":"https://x.org/fhir/Patient/9/_history/2"}}`, "patient",
			[]ReferenceValue{{Type: "Patient", ID: "9", URL: "https://x.org/fhir/Patient/9/_history/2"}}},
		{"typed logical reference", "Observation",
			`{"resourceType":"Observation","subject":{"type":"Patient","identifier":{"value":"1"}}}`, "patient", nil},
		{"contained patient is skipped", "Observation",
			`{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"c"}],"subject":{"reference":"#c"}}`, "patient", nil},
		{"bundle first entry", "Bundle",
			`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Composition","id":"c1"}}]}`, "composition",
			[]ReferenceValue{{Type: "Composition", ID: "c1"}}},
		{"canonical", "PlanDefinition",
			`{"resourceType":"PlanDefinition","library":["http://x.org/Library/l|2"]}`, "depends-on",
			[]ReferenceValue{{Type: "Library", ID: "l", URL: "http://x.org/Library/l"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refsOf(extract(t, tt.typ, tt.body), tt.param); !slices.Equal(got, tt.want) {
				t.Errorf("%s: %+v, want %+v", tt.param, got, tt.want)
			}
		})
	}
}

func TestExtractNumbersAndQuantities(t *testing.T) {
	r := extract(t, "RiskAssessment", `{"resourceType":"RiskAssessment","prediction":[
		{"probabilityDecimal":0.25},{"probabilityRange":{"low":{"value":0.1},"high":{"value":0.3}}}]}`)
	var got []NumberValue
	for _, n := range r.Numbers {
		if n.Param == "probability" {
			got = append(got, n.NumberValue)
		}
	}
	if len(got) != 2 || !near(got[0].Low, 0.245) || !near(got[0].High, 0.255) || got[1].Low != 0.1 || got[1].High != 0.3 {
		t.Errorf("probability %+v", got)
	}
	r = extract(t, "Condition", `{"resourceType":"Condition","onsetAge":{"value":50,"system":"http://unitsofmeasure.org","code":"a"}}`)
	if q := quantitiesOf(r, "onset-age"); len(q) != 1 || q[0].Value != 50 || q[0].Low != 49.5 || q[0].Code != "a" {
		t.Errorf("onset-age %+v", q)
	}
	r = extract(t, "Invoice", `{"resourceType":"Invoice","totalNet":{"value":10.00,"currency":"EUR"}}`)
	if q := quantitiesOf(r, "totalnet"); len(q) != 1 || q[0].System != "urn:iso:std:iso:4217" || q[0].Code != "EUR" || !near(q[0].High, 10.005) {
		t.Errorf("totalnet %+v", q)
	}
}

func TestExtractTimingAndPeriod(t *testing.T) {
	r := extract(t, "Condition", `{"resourceType":"Condition","onsetPeriod":{"end":"2021"}}`)
	if got := datesOf(r, "onset-date"); len(got) != 1 || got[0] != (DateRange{MinDate, utc("2021-12-31T23:59:59.999999Z")}) {
		t.Errorf("onset-date %+v", got)
	}
	r = extract(t, "Condition", `{"resourceType":"Condition","onsetPeriod":{"start":"2022","end":"2021"}}`)
	if got := datesOf(r, "onset-date"); len(got) != 0 {
		t.Errorf("a period ending before it starts is not indexed: %+v", got)
	}
}

func TestExtractRejects(t *testing.T) {
	if _, err := Extract("Patient", []byte(`{"resourceType":"Observation"}`)); err == nil ||
		err.Error() != `search: resourceType "Observation", want "Patient"` {
		t.Errorf("type mismatch: %v", err)
	}
	if _, err := Extract("Patient", []byte(`[1]`)); err == nil {
		t.Error("array accepted")
	}
	if _, err := Extract("Patient", []byte(`null`)); err == nil ||
		err.Error() != "search: decode resource: not a JSON object" {
		t.Errorf("null: %v", err)
	}
}
