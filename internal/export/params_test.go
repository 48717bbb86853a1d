package export

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

func TestCheckHeaders(t *testing.T) {
	tests := []struct {
		name    string
		accept  []string
		prefer  []string
		lenient bool
		err     string
	}{
		{"both", []string{"application/fhir+json"}, []string{"respond-async"}, false, ""},
		{"lenient", []string{"application/fhir+json"}, []string{"respond-async, handling=lenient"}, true, ""},
		{"lenient in its own header", []string{"application/fhir+json"}, []string{"respond-async", "handling=lenient"}, true, ""},
		{"strict", []string{"application/fhir+json"}, []string{"respond-async,handling=strict"}, false, ""},
		{"accept list", []string{"application/json, application/fhir+json;q=0.9"}, []string{"respond-async"}, false, ""},
		{"no accept", nil, []string{"respond-async"}, false, "Accept: application/fhir+json"},
		{"other accept", []string{"application/json"}, []string{"respond-async"}, false, "Accept: application/fhir+json"},
		{"refused by q=0", []string{"application/fhir+json;q=0"}, []string{"respond-async"}, false, "Accept: application/fhir+json"},
		{"no prefer", []string{"application/fhir+json"}, nil, false, "Prefer: respond-async"},
		{"prefer without async", []string{"application/fhir+json"}, []string{"handling=lenient"}, false, "Prefer: respond-async"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/fhir/$export", nil)
			for _, v := range tt.accept {
				r.Header.Add("Accept", v)
			}
			for _, v := range tt.prefer {
				r.Header.Add("Prefer", v)
			}
			lenient, err := checkHeaders(r)
			if tt.err == "" {
				if err != nil || lenient != tt.lenient {
					t.Fatalf("= %v, %v; want lenient %v", lenient, err, tt.lenient)
				}
				return
			}
			fe := fhir.AsError(err)
			if fe == nil || fe.Status != 400 || !strings.Contains(fe.Diagnostics, tt.err) {
				t.Fatalf("error %v, want 400 mentioning %q", err, tt.err)
			}
		})
	}
}

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		level   Level
		post    bool
		lenient bool
		check   func(t *testing.T, q *request)
		err     string // diagnostics substring of a 400
	}{
		{name: "no parameters", query: "", check: func(t *testing.T, q *request) {
			if q.types != nil || !q.since.IsZero() || q.format != fhir.MediaNDJSON {
				t.Fatalf("%+v", q)
			}
		}},
		{name: "output formats", query: "_outputFormat=application%2Ffhir%2Bndjson"},
		{name: "ndjson", query: "_outputFormat=ndjson"},
		{name: "application/ndjson", query: "_outputFormat=application/ndjson"},
		{name: "other format", query: "_outputFormat=text/csv", err: "_outputFormat"},
		{name: "other format even lenient", query: "_outputFormat=text/csv", lenient: true, err: "_outputFormat"},
		{name: "since", query: "_since=2026-01-02T03:04:05.123%2B02:00", check: func(t *testing.T, q *request) {
			if !q.since.Equal(time.Date(2026, 1, 2, 1, 4, 5, 123e6, time.UTC)) {
				t.Fatalf("since %v", q.since)
			}
		}},
		{name: "since without zone", query: "_since=2026-01-02T03:04:05", err: "not a FHIR instant"},
		{name: "since date only", query: "_since=2026-01-02", err: "not a FHIR instant"},
		{name: "since in the future", query: "_since=2026-03-01T12:00:01Z", err: "in the future"},
		{name: "since twice", query: "_since=2026-01-02T03:04:05Z&_since=2026-01-02T03:04:05Z", err: "once"},
		{name: "types comma and repeat", query: "_type=Patient,Observation&_type=Condition,Patient", check: func(t *testing.T, q *request) {
			if !slices.Equal(q.types, []string{"Patient", "Observation", "Condition"}) {
				t.Fatalf("types %v", q.types)
			}
		}},
		{name: "unknown type", query: "_type=Patient,Banana", err: "_type Banana"},
		{name: "unknown type lenient", query: "_type=Patient,Banana", lenient: true, check: func(t *testing.T, q *request) {
			if !slices.Equal(q.types, []string{"Patient"}) || len(q.issues) != 1 || !strings.Contains(q.issues[0].Diagnostics, "Banana") {
				t.Fatalf("%+v", q)
			}
		}},
		{name: "elements", query: "_elements=Patient.name,gender&_elements=Observation.code", check: func(t *testing.T, q *request) {
			if !slices.Equal(q.elements, []string{"Patient.name", "gender", "Observation.code"}) {
				t.Fatalf("elements %v", q.elements)
			}
		}},
		{name: "nested element", query: "_elements=Patient.name.family", err: "_elements"},
		{name: "element of an unknown type", query: "_elements=Banana.name", err: "_elements"},
		{name: "patient at system level", query: "patient=Patient/1", post: true, err: "Patient and Group exports only"},
		{name: "patient in a GET", query: "patient=Patient/1", level: LevelPatient, err: "POST"},
		{name: "patients", query: "patient=Patient/1&patient=Patient/2&patient=Patient/1", level: LevelPatient, post: true,
			check: func(t *testing.T, q *request) {
				if !slices.Equal(q.patients, []string{"1", "2"}) {
					t.Fatalf("patients %v", q.patients)
				}
			}},
		{name: "patient not a Patient reference", query: "patient=Group/1", level: LevelPatient, post: true, err: "Patient/[id]"},
		{name: "type filters", query: "_typeFilter=Observation%3Fcategory%3Dlaboratory%2Cvital-signs,MedicationRequest%3Fstatus%3Dactive&_typeFilter=Observation%3Fcode%3Dx",
			check: func(t *testing.T, q *request) {
				if len(q.filters) != 3 || q.filters[0].Query.Get("category") != "laboratory,vital-signs" ||
					q.filters[1].Type != "MedicationRequest" || q.filters[2].Query.Get("code") != "x" {
					t.Fatalf("filters %+v", q.filters)
				}
			}},
		{name: "type filter without type", query: "_typeFilter=status%3Dactive", err: "_typeFilter"},
		{name: "type filter with a result parameter", query: "_typeFilter=Observation%3F_include%3DObservation:subject", err: "_include"},
		{name: "associated data", query: "includeAssociatedData=LatestProvenanceResources,_custom", check: func(t *testing.T, q *request) {
			if !slices.Equal(q.associated, []string{"LatestProvenanceResources", "_custom"}) {
				t.Fatalf("associated %v", q.associated)
			}
		}},
		{name: "unknown parameter", query: "_until=2026-01-01T00:00:00Z", err: "parameter _until is not supported"},
		{name: "unknown parameter lenient", query: "organizeOutputBy=Patient", lenient: true, check: func(t *testing.T, q *request) {
			if len(q.issues) != 1 || q.issues[0].Code != fhir.IssueNotSupported || !strings.Contains(q.issues[0].Diagnostics, "organizeOutputBy") {
				t.Fatalf("issues %+v", q.issues)
			}
		}},
		{name: "format parameters ignored", query: "_format=json&_pretty=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			level := tt.level
			if level == "" {
				level = LevelSystem
			}
			q, err := parseRequest(vals, level, "", tt.post, tt.lenient, now)
			if tt.err != "" {
				fe := fhir.AsError(err)
				if fe == nil || fe.Status != http.StatusBadRequest || !strings.Contains(fe.Diagnostics, tt.err) {
					t.Fatalf("error %v, want 400 mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, q)
			}
		})
	}
}

func TestReadParametersBody(t *testing.T) {
	body := `{"resourceType":"Parameters","parameter":[
		{"name":"_since","valueInstant":"2026-01-01T00:00:00Z"},
		{"name":"_type","valueString":"Patient"},{"name":"_type","valueString":"Observation"},
		{"name":"patient","valueReference":{"reference":"Patient/a"}},
		{"name":"includeAssociatedData","valueCode":"_custom"}]}`
	r := httptest.NewRequest("POST", "/fhir/Patient/$export", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/fhir+json")
	got, err := readParams(r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"_since": {"2026-01-01T00:00:00Z"}, "_type": {"Patient", "Observation"}, "patient": {"Patient/a"},
		"includeAssociatedData": {"_custom"}}
	if got.Encode() != want.Encode() {
		t.Fatalf("got %v", got)
	}
	for _, tc := range []struct{ name, ct, body, query, err string }{
		{"not Parameters", "application/fhir+json", `{"resourceType":"Patient"}`, "", "want a Parameters"},
		{"not JSON", "application/fhir+json", `{`, "", "not a Parameters"},
		{"two values", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"A","valueCode":"B"}]}`, "", "exactly one value"},
		{"number value", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"_type","valueInteger":3}]}`, "", "must be a string"},
		{"form body", "application/x-www-form-urlencoded", `_type=Patient`, "", "application/fhir+json"},
		{"query string", "application/fhir+json", `{"resourceType":"Parameters"}`, "?_type=Patient", "in the Parameters body"},
		{"too big", "application/fhir+json", `{"resourceType":"Parameters","parameter":[` + strings.Repeat(" ", 2000) + `]}`, "", "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/fhir/$export"+tc.query, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ct)
			_, err := readParams(r, 1000)
			fe := fhir.AsError(err)
			if fe == nil || fe.Status >= 500 || !strings.Contains(fe.Diagnostics, tc.err) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.err)
			}
		})
	}
	// An empty POST body is an export without parameters.
	r = httptest.NewRequest("POST", "/fhir/$export", nil)
	if got, err := readParams(r, 1000); err != nil || len(got) != 0 {
		t.Fatalf("empty body = %v, %v", got, err)
	}
}

func TestElementsFor(t *testing.T) {
	p := Params{Elements: []string{"Patient.name", "gender", "Observation.code"}}
	if got := p.elementsFor("Patient"); !slices.Equal(got, []string{"name", "gender"}) {
		t.Fatalf("Patient: %v", got)
	}
	if got := p.elementsFor("Condition"); !slices.Equal(got, []string{"gender"}) {
		t.Fatalf("Condition: %v", got)
	}
}
