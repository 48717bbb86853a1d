package fhirpath

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// render shows a result compactly: each item as type:value.
func render(items []Item) string {
	var parts []string
	for _, it := range items {
		b, _ := json.Marshal(it.Value)
		parts = append(parts, it.Type+":"+string(b))
	}
	return strings.Join(parts, " ")
}

const obs = `{"resourceType":"Observation","id":"o1","status":"final",
"code":{"coding":[{"system":"s","code":"a"},{"system":"s","code":"b"}],"text":"T"},
"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/d"},{"reference":"#org"},{"reference":"http://x/fhir/Organization/9"}],
"valueQuantity":{"value":1.50,"unit":"mg"},"effectiveDateTime":"2020",
"contained":[{"resourceType":"Organization","id":"org"}],
"extension":[{"url":"http://e","valueString":"x"},{"url":"http://f","valueBoolean":true}],
"referenceSeq":{"x":1},
"component":[{"code":{"text":"c1"},"valueString":"v1"},{"code":{"text":"c2"},"valueCodeableConcept":{"text":"cc"}}]}`

func TestEval(t *testing.T) {
	res := decode(t, obs)
	tests := []struct{ expr, want string }{
		{"Observation.status", `:"final"`},
		{"Patient.name", ``},
		{"Resource.id", `:"o1"`},
		{"DomainResource.id", `:"o1"`},
		{"status", `:"final"`},
		{"Observation.code.coding.code", `:"a" :"b"`},
		{"Observation.code.coding[1].code", `:"b"`},
		{"Observation.code.coding[5]", ``},
		{"Observation.code.coding.code | Observation.status", `:"a" :"b" :"final"`},
		{"Observation.value", `Quantity:{"unit":"mg","value":1.50}`},
		{"(Observation.value as Quantity).unit", `:"mg"`},
		{"Observation.value.as(Quantity).value", `:1.50`},
		{"Observation.value.ofType(Quantity).unit", `:"mg"`},
		{"(Observation.value as string)", ``},
		{"Observation.effective as dateTime", `DateTime:"2020"`},
		{"Observation.effective.as(DateTime)", `DateTime:"2020"`},
		{"Observation.effective is dateTime", `boolean:true`},
		{"Observation.effective is Period", `boolean:false`},
		{"Observation.reference", ``},
		{"Observation.subject.where(resolve() is Patient)", `:{"reference":"Patient/p1"}`},
		{"Observation.subject.where(resolve() is Group)", ``},
		{"Observation.performer.where(resolve() is Organization)", `:{"reference":"#org"} :{"reference":"http://x/fhir/Organization/9"}`},
		{"Observation.performer.resolve()", `Practitioner:{"reference":"Practitioner/d"} Organization:{"id":"org","resourceType":"Organization"} Organization:{"reference":"http://x/fhir/Organization/9"}`},
		{"Observation.code.coding.where(code='b').system", `:"s"`},
		{"Observation.code.coding.where(code!='b').code", `:"a"`},
		{"Observation.status.exists()", `boolean:true`},
		{"Observation.issued.exists()", `boolean:false`},
		{"Observation.issued.empty()", `boolean:true`},
		{"Observation.code.coding.exists(code='b')", `boolean:true`},
		{"Observation.status.exists() and Observation.status != 'final'", `boolean:false`},
		{"Observation.status.exists() or Observation.issued = 'x'", `boolean:true`},
		{"Observation.issued = 'x' and Observation.status = 'final'", ``},
		{"Observation.issued = 'x' or Observation.status = 'final'", `boolean:true`},
		{"Observation.status = 'final' xor Observation.id = 'o1'", `boolean:false`},
		{"Observation.code.coding.first().code", `:"a"`},
		{"Observation.code.coding.last().code", `:"b"`},
		{"Observation.code.coding.count()", `integer:2`},
		{"Observation.status.hasValue()", `boolean:true`},
		{"Observation.code.hasValue()", `boolean:false`},
		{"Observation.status.not()", `boolean:false`},
		{"Observation.issued.exists().not()", `boolean:true`},
		{"Observation.extension('http://f').value", `Boolean:true`},
		{"Observation.component.where(code.text = 'c2').value.as(CodeableConcept).text", `:"cc"`},
		{"%resource.id", `:"o1"`},
		{"Observation.component.where($this.code.text = 'c1').value", `String:"v1"`},
		{"Observation.value.value = 1.5", `boolean:true`},
		{"`status`", `:"final"`},
		{"Observation.status = 'fin\\'al'", `boolean:false`},
		{"FHIR.Observation.status", ``},
		{"Observation.effective is FHIR.dateTime", `boolean:true`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(res)
			if err != nil {
				t.Fatal(err)
			}
			if s := render(got); s != tt.want {
				t.Errorf("got  %s\nwant %s", s, tt.want)
			}
		})
	}
}

func TestEvalOn(t *testing.T) {
	res := decode(t, `{"resourceType":"MolecularSequence","referenceSeq":{"chromosome":{"text":"1"}},"variant":[{"start":5}]}`)
	comp := MustParse("%resource.referenceSeq.chromosome.text")
	variant := MustParse("MolecularSequence.variant")
	items, _ := variant.Eval(res)
	got, err := comp.EvalOn(items[0], res)
	if err != nil || render(got) != `:"1"` {
		t.Errorf("got %s %v", render(got), err)
	}
	start, _ := MustParse("start").EvalOn(items[0], res)
	if render(start) != `:5` {
		t.Errorf("start %s", render(start))
	}
}

func TestEvalErrors(t *testing.T) {
	res := decode(t, obs)
	tests := []struct{ expr, want string }{
		{"Observation.code.coding is Coding", `fhirpath "Observation.code.coding is Coding": is Coding on a collection of 2 items`},
		{"Observation.code.coding.code.not()", `fhirpath "Observation.code.coding.code.not()": a collection of 2 items used as a boolean`},
		{"Observation.code.coding['a']", `fhirpath "Observation.code.coding['a']": index is not an integer`},
	}
	for _, tt := range tests {
		_, err := MustParse(tt.expr).Eval(res)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: err %v, want %s", tt.expr, err, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", `fhirpath "": at 0: unexpected ""`},
		{"Observation.", `fhirpath "Observation.": at 12: want a name, got ""`},
		{"Observation.foo(", `fhirpath "Observation.foo(": at 16: unexpected ""`},
		{"Observation.foo()", `fhirpath "Observation.foo()": at 12: unsupported function foo()`},
		{"Observation.where()", `fhirpath "Observation.where()": at 12: where() takes 1 to 1 arguments, got 0`},
		{"Observation.as('x')", `fhirpath "Observation.as('x')": at 12: as() wants a type name`},
		{"Observation.extension(1)", `fhirpath "Observation.extension(1)": at 12: extension() wants a string literal`},
		{"Observation.status = 'x", `fhirpath "Observation.status = 'x": at 21: unterminated string`},
		{"(Observation.status", `fhirpath "(Observation.status": at 19: want ")", got ""`},
		{"Observation.status as", `fhirpath "Observation.status as": at 21: want a type name, got ""`},
		{"%foo", `fhirpath "%foo": at 0: unknown variable %foo`},
		{"$index", `fhirpath "$index": at 0: unsupported $index`},
		{"Observation.status ; 1", `fhirpath "Observation.status ; 1": at 19: unexpected ';'`},
		{"Observation.status )", `fhirpath "Observation.status )": at 19: unexpected ")"`},
		{"`abc", "fhirpath \"`abc\": at 0: unterminated `identifier`"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.expr)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) = %v\nwant %s", tt.expr, err, tt.want)
		}
	}
}

func TestForType(t *testing.T) {
	e := MustParse("AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | (Observation.value as Quantity) | Resource.id")
	tests := []struct{ typ, want string }{
		{"AllergyIntolerance", "AllergyIntolerance.patient | Resource.id"},
		{"Observation", "(Observation.value as Quantity) | Resource.id"},
		{"Patient", "Resource.id"},
	}
	for _, tt := range tests {
		if got := e.ForType(tt.typ); got == nil || got.String() != tt.want {
			t.Errorf("ForType(%s) = %v, want %s", tt.typ, got, tt.want)
		}
	}
	if got := MustParse("Patient.name | Person.name").ForType("Group"); got != nil {
		t.Errorf("ForType(Group) = %v, want nil", got)
	}
	if e := MustParse("Patient.name"); e.ForType("Patient") != e || e.ForType("Group") != nil {
		t.Error("single branch")
	}
}

func TestSplitReference(t *testing.T) {
	tests := []struct{ in, typ, id string }{
		{"Patient/1", "Patient", "1"},
		{"http://a/b/Observation/x.y/_history/2", "Observation", "x.y"},
		{"Patient/1?x=y", "", ""},
		{"Nope/1", "", ""},
		{"Patient/a b", "", ""},
		{"1", "", ""},
		{"/1", "", ""},
	}
	for _, tt := range tests {
		typ, id, ok := SplitReference(tt.in)
		if typ != tt.typ || id != tt.id || ok != (tt.typ != "") {
			t.Errorf("SplitReference(%q) = %q %q %v", tt.in, typ, id, ok)
		}
	}
}

func ExampleExpr_Eval() {
	var res any
	d := json.NewDecoder(strings.NewReader(`{"resourceType":"Observation","valueQuantity":{"value":5,"unit":"mg"}}`))
	d.UseNumber()
	_ = d.Decode(&res)
	items, _ := MustParse("(Observation.value as Quantity).unit").Eval(res)
	fmt.Println(items[0].Value)
	// Output: mg
}
