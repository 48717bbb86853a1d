package search

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

func mustQuery(t *testing.T, typ, raw string, strict bool) (*Query, []fhir.Issue) {
	t.Helper()
	vals, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, warn, err := ParseQuery(typ, vals, strict)
	if err != nil {
		t.Fatalf("ParseQuery(%s, %q): %v", typ, raw, err)
	}
	return q, warn
}

func oneClause(t *testing.T, typ, raw string) Clause {
	t.Helper()
	q, warn := mustQuery(t, typ, raw, true)
	if len(q.Where) != 1 || len(warn) != 0 {
		t.Fatalf("%q: %d clauses, warnings %v", raw, len(q.Where), warn)
	}
	return q.Where[0]
}

func utc(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestParseString(t *testing.T) {
	tests := []struct {
		raw        string
		mod        Modifier
		norm, exac []string
	}{
		{"name=Zo%C3%AB", ModifierNone, []string{"zoe"}, []string{"Zoë"}},
		{"name:exact=Eve", ModifierExact, []string{"eve"}, []string{"Eve"}},
		{"name:contains=VE", ModifierContains, []string{"ve"}, []string{"VE"}},
		{"name=a,B", ModifierNone, []string{"a", "b"}, []string{"a", "B"}},
		{`name=a\,b`, ModifierNone, []string{"a,b"}, []string{"a,b"}},
		{`family=O\\Brien`, ModifierNone, []string{`o\brien`}, []string{`O\Brien`}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c := oneClause(t, "Patient", tt.raw)
			if c.Modifier != tt.mod || c.Param.Type != TypeString {
				t.Fatalf("modifier %q type %s", c.Modifier, c.Param.Type)
			}
			var norm, exact []string
			for _, v := range c.Values {
				norm, exact = append(norm, v.String.Norm), append(exact, v.String.Exact)
			}
			if !slices.Equal(norm, tt.norm) || !slices.Equal(exact, tt.exac) {
				t.Errorf("norm %q exact %q, want %q %q", norm, exact, tt.norm, tt.exac)
			}
		})
	}
}

func TestRepeatIsAnd(t *testing.T) {
	q, _ := mustQuery(t, "Patient", "name=a&name=b&gender=", true)
	if len(q.Where) != 2 || q.Where[0].Values[0].Raw != "a" || q.Where[1].Values[0].Raw != "b" {
		t.Errorf("clauses %+v", q.Where)
	}
}

func TestParseToken(t *testing.T) {
	tests := []struct {
		typ, raw  string
		mod       Modifier
		want      TokenValue
		hasSystem bool
		text      string
		missing   bool
	}{
		{"Patient", "gender=male", ModifierNone, TokenValue{Code: "male"}, false, "", false},
		{"Patient", "identifier=http://x|123", ModifierNone, TokenValue{System: "http://x", Code: "123"}, true, "", false},
		{"Patient", "identifier=|123", ModifierNone, TokenValue{Code: "123"}, true, "", false},
		{"Patient", "identifier=http://x|", ModifierNone, TokenValue{System: "http://x"}, true, "", false},
		{"Patient", `identifier=http://x|a\|b`, ModifierNone, TokenValue{System: "http://x", Code: "a|b"}, true, "", false},
		{"Patient", "gender:not=male", ModifierNot, TokenValue{Code: "male"}, false, "", false},
		{"Observation", "code:text=Blood%20Pr%C3%A9ssure", ModifierText, TokenValue{}, false, "blood pressure", false},
		{"Patient", "active:missing=true", ModifierMissing, TokenValue{}, false, "", true},
		{"Patient", "active=true", ModifierNone, TokenValue{Code: "true"}, false, "", false},
		{"Patient", "_id=abc", ModifierNone, TokenValue{Code: "abc"}, false, "", false},
		{"Patient", "_tag=http://s|c", ModifierNone, TokenValue{System: "http://s", Code: "c"}, true, "", false},
		{"Patient", "_security=R", ModifierNone, TokenValue{Code: "R"}, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c := oneClause(t, tt.typ, tt.raw)
			v := c.Values[0]
			if c.Modifier != tt.mod || v.Token != tt.want || v.HasSystem != tt.hasSystem ||
				v.String.Norm != tt.text || v.Missing != tt.missing {
				t.Errorf("got mod %q %+v", c.Modifier, v)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		typ, raw  string
		prefix    Prefix
		low, high string
	}{
		{"Patient", "birthdate=2020", PrefixEq, "2020-01-01T00:00:00Z", "2020-12-31T23:59:59.999999Z"},
		{"Patient", "birthdate=eq2020-02", PrefixEq, "2020-02-01T00:00:00Z", "2020-02-29T23:59:59.999999Z"},
		{"Patient", "birthdate=ne2020-02-03", PrefixNe, "2020-02-03T00:00:00Z", "2020-02-03T23:59:59.999999Z"},
		{"Observation", "date=gt2020-01-01T10:00:00%2B02:00", PrefixGt, "2020-01-01T08:00:00Z", "2020-01-01T08:00:00.999999Z"},
		{"Observation", "date=lt2020-01-01T10:00Z", PrefixLt, "2020-01-01T10:00:00Z", "2020-01-01T10:00:59.999999Z"},
		{"Observation", "date=ge2020-01-01T10:00:00.5Z", PrefixGe, "2020-01-01T10:00:00.5Z", "2020-01-01T10:00:00.599999Z"},
		{"Observation", "date=le2020", PrefixLe, "2020-01-01T00:00:00Z", "2020-12-31T23:59:59.999999Z"},
		{"Observation", "date=sa2020", PrefixSa, "2020-01-01T00:00:00Z", "2020-12-31T23:59:59.999999Z"},
		{"Observation", "date=eb2020", PrefixEb, "2020-01-01T00:00:00Z", "2020-12-31T23:59:59.999999Z"},
		{"Observation", "date=ap2020", PrefixAp, "2020-01-01T00:00:00Z", "2020-12-31T23:59:59.999999Z"},
		{"Patient", "_lastUpdated=gt2024-01-01T00:00:00Z", PrefixGt, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.999999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			v := oneClause(t, tt.typ, tt.raw).Values[0]
			want := DateRange{Low: utc(tt.low), High: utc(tt.high)}
			if v.Prefix != tt.prefix || v.Date != want {
				t.Errorf("got %s %+v, want %s %+v", v.Prefix, v.Date, tt.prefix, want)
			}
		})
	}
}

func TestParseNumberAndQuantity(t *testing.T) {
	v := oneClause(t, "RiskAssessment", "probability=gt0.8").Values[0]
	if v.Prefix != PrefixGt || v.Number.Value != 0.8 || !near(v.Number.Low, 0.75) || !near(v.Number.High, 0.85) {
		t.Errorf("number %+v", v)
	}
	tests := []struct {
		raw          string
		prefix       Prefix
		value        float64
		system, code string
	}{
		{"value-quantity=5.4|http://unitsofmeasure.org|mg", PrefixEq, 5.4, "http://unitsofmeasure.org", "mg"},
		{"value-quantity=le5.4||mg", PrefixLe, 5.4, "", "mg"},
		{"value-quantity=ap100", PrefixAp, 100, "", ""},
		{"value-quantity=1e2", PrefixEq, 100, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			v := oneClause(t, "Observation", tt.raw).Values[0]
			q := v.Quantity
			if v.Prefix != tt.prefix || q.Value != tt.value || q.System != tt.system || q.Code != tt.code {
				t.Errorf("got %s %+v", v.Prefix, q)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestParseReference(t *testing.T) {
	tests := []struct {
		raw    string
		mod    Modifier
		target string
		want   ReferenceValue
	}{
		{"subject=Patient/123", ModifierNone, "", ReferenceValue{Type: "Patient", ID: "123"}},
		{"subject=Patient/123/_history/2", ModifierNone, "", ReferenceValue{Type: "Patient", ID: "123"}},
		{"subject=123", ModifierNone, "", ReferenceValue{ID: "123"}},
		{"subject:Patient=123", ModifierType, "Patient", ReferenceValue{Type: "Patient", ID: "123"}},
		{"subject=http://other.org/fhir/Patient/1", ModifierNone, "", ReferenceValue{Type: "Patient", ID: "1", URL: "http://other.org/fhir/Patient/1"}},
		{"subject:missing=false", ModifierMissing, "", ReferenceValue{}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c := oneClause(t, "Observation", tt.raw)
			if c.Modifier != tt.mod || c.TargetType != tt.target || c.Values[0].Reference != tt.want {
				t.Errorf("got %q %q %+v", c.Modifier, c.TargetType, c.Values[0].Reference)
			}
		})
	}
	c := oneClause(t, "PlanDefinition", "depends-on=http://x.org/Library/a|1.0")
	if c.Values[0].Reference.URL != "http://x.org/Library/a" {
		t.Errorf("canonical %+v", c.Values[0].Reference)
	}
}

func TestParseChain(t *testing.T) {
	c := oneClause(t, "Observation", "subject:Patient.name=peter")
	if len(c.Chain) != 1 || c.Chain[0].Param.Code != "subject" || !slices.Equal(c.Chain[0].Types, []string{"Patient"}) ||
		c.Param.ID != "individual-given" && c.Param.Code != "name" || !slices.Equal(c.Types, []string{"Patient"}) {
		t.Errorf("chain %+v param %s types %v", c.Chain, c.Param.ID, c.Types)
	}
	c = oneClause(t, "Observation", "subject.birthdate=1970")
	if !slices.Equal(c.Types, []string{"Patient"}) && !slices.Contains(c.Types, "Patient") {
		t.Errorf("subject.birthdate types %v", c.Types)
	}
	if slices.Contains(c.Chain[0].Types, "Location") {
		t.Errorf("Location has no birthdate: %v", c.Chain[0].Types)
	}
	c = oneClause(t, "Observation", "patient.organization.name:exact=Acme")
	if len(c.Chain) != 2 || c.Chain[1].Param.Code != "organization" || !slices.Equal(c.Types, []string{"Organization"}) ||
		c.Modifier != ModifierExact || c.Values[0].String.Exact != "Acme" {
		t.Errorf("two-level chain %+v types %v", c.Chain, c.Types)
	}
}

func TestParseHas(t *testing.T) {
	c := oneClause(t, "Patient", "_has:Observation:patient:code=1234-5")
	if c.Has == nil || c.Has.Type != "Observation" || c.Has.Ref.Code != "patient" || c.Has.Clause.Param.Code != "code" ||
		c.Has.Clause.Values[0].Token.Code != "1234-5" || c.Param != nil {
		t.Fatalf("has %+v", c.Has)
	}
	c = oneClause(t, "Patient", "_has:Observation:patient:_has:Provenance:target:agent=Practitioner/1")
	inner := c.Has.Clause.Has
	if inner == nil || inner.Type != "Provenance" || inner.Clause.Values[0].Reference.ID != "1" {
		t.Fatalf("nested has %+v", c.Has)
	}
}

func TestParseURIAndComposite(t *testing.T) {
	c := oneClause(t, "ValueSet", "url:below=http://acme.org/fhir/")
	if c.Modifier != ModifierBelow || c.Values[0].URI != "http://acme.org/fhir/" {
		t.Errorf("uri %+v", c)
	}
	c = oneClause(t, "Observation", "code-value-quantity=http://loinc.org|8480-6$gt100")
	p := c.Values[0].Parts
	if len(p) != 2 || p[0].Token.Code != "8480-6" || p[1].Prefix != PrefixGt || p[1].Quantity.Value != 100 {
		t.Errorf("composite %+v", p)
	}
	c = oneClause(t, "Location", "near=42.2|-83.6|11.2|km")
	if c.Values[0].Raw != "42.2|-83.6|11.2|km" {
		t.Errorf("special %+v", c.Values[0])
	}
}

func TestParseControls(t *testing.T) {
	q, warn := mustQuery(t, "Observation",
		"_count=10&_offset=20&_sort=-date,_id,-_lastUpdated&_total=accurate&_summary=data&_elements=status,Observation.code"+
			"&_include=Observation:patient&_include:iterate=Patient:general-practitioner&_include=Observation:subject:Patient"+
			"&_revinclude=Provenance:target&_include=*&_format=json&_cursor=abc", true)
	if len(warn) != 0 {
		t.Fatal(warn)
	}
	if !q.HasCount || q.Count != 10 || q.Offset != 20 || q.Cursor != "abc" || q.Total != TotalAccurate || q.Summary != SummaryData {
		t.Errorf("controls %+v", q)
	}
	if !slices.Equal(q.Elements, []string{"status", "code"}) {
		t.Errorf("elements %v", q.Elements)
	}
	var sort []string
	for _, s := range q.Sort {
		k := s.Param.Code
		if s.Descending {
			k = "-" + k
		}
		sort = append(sort, k)
	}
	if !slices.Equal(sort, []string{"-date", "_id", "-_lastUpdated"}) {
		t.Errorf("sort %v", sort)
	}
	if len(q.Includes) != 4 || len(q.RevIncludes) != 1 {
		t.Fatalf("includes %+v rev %+v", q.Includes, q.RevIncludes)
	}
	inc := map[string]Include{}
	for _, i := range q.Includes {
		code := "*"
		if i.Param != nil {
			code = i.Param.Code
		}
		inc[i.Source+":"+code+":"+i.Target] = i
	}
	if i, ok := inc["Patient:general-practitioner:"]; !ok || !i.Iterate {
		t.Errorf("iterate include %+v", inc)
	}
	if _, ok := inc["Observation:subject:Patient"]; !ok {
		t.Errorf("targeted include %+v", inc)
	}
	if _, ok := inc[":*:"]; !ok {
		t.Errorf("wildcard include %+v", inc)
	}
	if r := q.RevIncludes[0]; r.Source != "Provenance" || r.Param.Code != "target" || r.Iterate {
		t.Errorf("revinclude %+v", r)
	}
	q, _ = mustQuery(t, "Patient", "_summary=count&_total=none", true)
	if q.Summary != SummaryCount || q.Total != TotalNone || q.HasCount {
		t.Errorf("%+v", q)
	}
}

func TestUnknownParameters(t *testing.T) {
	q, warn := mustQuery(t, "Patient", "foo=bar&name=x&_text=y&subject:Patient.nope=1&_sort=nope", false)
	if len(q.Where) != 1 || q.Where[0].Param.Code != "name" {
		t.Errorf("clauses %+v", q.Where)
	}
	var got []string
	for _, w := range warn {
		if w.Severity != fhir.SeverityWarning || w.Code != fhir.IssueNotSupported {
			t.Errorf("issue %+v", w)
		}
		got = append(got, w.Diagnostics)
	}
	want := []string{
		`search parameter "_sort" cannot sort by "nope"; ignored`,
		`search parameter "_text" is not supported; ignored`,
		`search parameter "foo" is unknown for Patient; ignored`,
		`search parameter "subject:Patient.nope" is unknown for Patient; ignored`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%q\nwant\n%q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		typ, raw string
		strict   bool
		status   int
		code     fhir.IssueType
		diag     string
	}{
		{"Patient", "foo=bar", true, 400, fhir.IssueNotSupported, `search parameter "foo" is unknown for Patient`},
		{"Patient", "_filter=x", true, 400, fhir.IssueNotSupported, `search parameter "_filter" is not supported`},
		{"Observation", "subject.nope=1", true, 400, fhir.IssueNotSupported, `search parameter "subject.nope" is unknown: no target type of subject has it`},
		{"Patient", "birthdate=xx2020", false, 400, fhir.IssueInvalid, `search parameter "birthdate": unknown prefix "xx"`},
		{"Patient", "birthdate=2020-13", false, 400, fhir.IssueInvalid, `search parameter "birthdate": invalid date "2020-13"`},
		{"Patient", "birthdate=2020-02-30", false, 400, fhir.IssueInvalid, `search parameter "birthdate": invalid date "2020-02-30"`},
		{"Patient", "birthdate=gt", false, 400, fhir.IssueInvalid, `search parameter "birthdate": invalid date ""`},
		{"Observation", "date=2020-01-01T25:00Z", false, 400, fhir.IssueInvalid, `search parameter "date": invalid date "2020-01-01T25:00Z"`},
		{"RiskAssessment", "probability=1.2.3", false, 400, fhir.IssueInvalid, `search parameter "probability": invalid number "1.2.3"`},
		{"RiskAssessment", "probability=zz5", false, 400, fhir.IssueInvalid, `search parameter "probability": unknown prefix "zz"`},
		{"Observation", "value-quantity=5.4|x", false, 400, fhir.IssueInvalid, `search parameter "value-quantity": quantity "5.4|x" wants number or number|system|code`},
		{"Observation", "value-quantity=abc", false, 400, fhir.IssueInvalid, `search parameter "value-quantity": unknown prefix "ab"`},
		{"Patient", "gender:foo=x", false, 400, fhir.IssueInvalid, `search parameter "gender:foo": unknown modifier :foo`},
		{"Patient", "name:text=x", false, 400, fhir.IssueNotSupported, `search parameter "name:text": modifier :text is not supported on string parameters`},
		{"Observation", "code:in=http://vs", false, 400, fhir.IssueNotSupported, `search parameter "code:in": modifier :in is not supported on token parameters`},
		{"Observation", "subject:identifier=x", false, 400, fhir.IssueNotSupported, `search parameter "subject:identifier": modifier :identifier is not supported on reference parameters`},
		{"Patient", "identifier=|", false, 400, fhir.IssueInvalid, `search parameter "identifier": token "|" has neither system nor code`},
		{"Patient", "identifier=a|b|c", false, 400, fhir.IssueInvalid, `search parameter "identifier": token "a|b|c" has more than one unescaped |`},
		{"Patient", "active:missing=maybe", false, 400, fhir.IssueInvalid, `search parameter "active:missing": :missing wants true or false, got "maybe"`},
		{"Observation", "subject=Foo/1", false, 400, fhir.IssueInvalid, `search parameter "subject": invalid reference "Foo/1": want id, Type/id or an absolute URL`},
		{"Observation", "subject=a b", false, 400, fhir.IssueInvalid, `search parameter "subject": invalid id "a b"`},
		{"Observation", "subject:Patient=Group/1", false, 400, fhir.IssueInvalid, `search parameter "subject:Patient": reference "Group/1" is not a Patient`},
		{"Observation", "subject:Organization=1", false, 400, fhir.IssueInvalid, `search parameter "subject:Organization": "Organization" is not a target type of subject`},
		{"Observation", "patient=Organization/1", false, 400, fhir.IssueInvalid, `search parameter "patient": Organization is not a target type of patient`},
		{"Observation", "code.name=x", false, 400, fhir.IssueInvalid, `search parameter "code.name": "code" is not a reference parameter and cannot be chained`},
		{"Observation", "subject:Organization.name=x", false, 400, fhir.IssueInvalid, `search parameter "subject:Organization.name": "Organization" is not a target type of subject`},
		{"Patient", "_has:Observation=1", false, 400, fhir.IssueInvalid, `search parameter "_has:Observation": _has wants _has:Type:reference:parameter`},
		{"Patient", "_has:Foo:patient:code=1", false, 400, fhir.IssueInvalid, `search parameter "_has:Foo:patient:code": "Foo" is not a resource type`},
		{"Patient", "_has:Observation:code:code=1", false, 400, fhir.IssueInvalid, `search parameter "_has:Observation:code:code": Observation has no reference parameter "code" to Patient`},
		{"Observation", "code-value-quantity=abc", false, 400, fhir.IssueInvalid, `search parameter "code-value-quantity": composite "abc" wants 2 $-separated values`},
		{"Observation", "code-value-quantity=a$xx1", false, 400, fhir.IssueInvalid, `search parameter "code-value-quantity": unknown prefix "xx"`},
		{"Patient", "_count=-1", false, 400, fhir.IssueInvalid, `search parameter "_count": wants a non-negative integer, got "-1"`},
		{"Patient", "_count=x", false, 400, fhir.IssueInvalid, `search parameter "_count": wants a non-negative integer, got "x"`},
		{"Patient", "_count=1&_count=2", false, 400, fhir.IssueInvalid, `search parameter "_count": may appear only once`},
		{"Patient", "_count:x=1", false, 400, fhir.IssueInvalid, `search parameter "_count:x": unknown modifier :x`},
		{"Patient", "_offset=-5", false, 400, fhir.IssueInvalid, `search parameter "_offset": wants a non-negative integer, got "-5"`},
		{"Patient", "_total=all", false, 400, fhir.IssueInvalid, `search parameter "_total": unknown value "all"`},
		{"Patient", "_summary=short", false, 400, fhir.IssueInvalid, `search parameter "_summary": unknown value "short"`},
		{"Patient", "_elements=a.b", false, 400, fhir.IssueInvalid, `search parameter "_elements": invalid element name "a.b"`},
		{"Patient", "_sort=nope", true, 400, fhir.IssueNotSupported, `search parameter "_sort" cannot sort by "nope"`},
		{"Observation", "_include=Observation:foo", false, 400, fhir.IssueInvalid, `search parameter "_include": Observation has no reference parameter "foo"`},
		{"Observation", "_include=Observation:code", false, 400, fhir.IssueInvalid, `search parameter "_include": Observation has no reference parameter "code"`},
		{"Observation", "_include=Foo:x", false, 400, fhir.IssueInvalid, `search parameter "_include": "Foo" is not a resource type`},
		{"Observation", "_include=Observation", false, 400, fhir.IssueInvalid, `search parameter "_include": "Observation" wants Type:parameter[:TargetType]`},
		{"Observation", "_include=Observation:subject:Medication", false, 400, fhir.IssueInvalid, `search parameter "_include": "Medication" is not a target type of subject`},
		{"Observation", "_include:deep=Observation:subject", false, 400, fhir.IssueInvalid, `search parameter "_include:deep": unknown modifier :deep`},
		{"Observation", "_revinclude=Provenance:nope", false, 400, fhir.IssueInvalid, `search parameter "_revinclude": Provenance has no reference parameter "nope"`},
		{"Foo", "a=b", false, 404, fhir.IssueNotFound, `unknown resource type "Foo"`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			vals, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = ParseQuery(tt.typ, vals, tt.strict)
			fe := fhir.AsError(err)
			if fe == nil {
				t.Fatalf("err = %v, want a *fhir.Error", err)
			}
			if fe.Status != tt.status || fe.Code != tt.code || fe.Diagnostics != tt.diag {
				t.Errorf("got %d %s %q\nwant %d %s %q", fe.Status, fe.Code, fe.Diagnostics, tt.status, tt.code, tt.diag)
			}
		})
	}
}
