package search

import (
	"reflect"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/fhirpath"
)

// TestEveryExpressionParses compiles every expression and component of the
// registry; none may fail.
func TestEveryExpressionParses(t *testing.T) {
	for _, p := range All() {
		if p.Expression == "" {
			continue
		}
		if _, err := fhirpath.Parse(p.Expression); err != nil {
			t.Errorf("%s: %v", p.ID, err)
		}
		for _, c := range p.Components {
			if _, err := fhirpath.Parse(c.Expression); err != nil {
				t.Errorf("%s component %s: %v", p.ID, c.Param.ID, err)
			}
		}
	}
	if _, err := plans(); err != nil {
		t.Fatal(err)
	}
}

// TestEveryExpressionOnEmptyResource evaluates every parameter of every
// type on a resource holding only its type.
func TestEveryExpressionOnEmptyResource(t *testing.T) {
	x := NewExtractor()
	for _, typ := range fhir.ResourceTypes() {
		rows, err := x.Extract(typ, []byte(`{"resourceType":"`+typ+`"}`))
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		// Patient.deceased.exists() and ... is false, not empty: the only
		// parameter that indexes a value on an empty resource.
		want := 0
		if typ == "Patient" {
			want = 1
		}
		if rows.Len() != want {
			t.Errorf("%s: %d rows from an empty resource: %+v", typ, rows.Len(), rows)
		}
	}
}

// TestEveryExpressionOnSynthea evaluates every parameter on every resource
// of synthea-100 and checks that common parameters produce rows.
func TestEveryExpressionOnSynthea(t *testing.T) {
	x := NewExtractor()
	for _, typ := range syntheaTypes {
		t.Run(typ, func(t *testing.T) {
			total := 0
			for i, body := range loadSynthea(t, typ) {
				rows, err := x.Extract(typ, body)
				if err != nil {
					t.Fatalf("resource %d: %v", i, err)
				}
				if !hasToken(rows, "_id") {
					t.Fatalf("resource %d: no _id row", i)
				}
				total += rows.Len()
			}
			t.Logf("%s: %d rows", typ, total)
		})
	}
}

// TestForTypePrunes checks that a shared parameter compiles to the branch
// of each type only.
func TestForTypePrunes(t *testing.T) {
	tests := []struct{ typ, code, want string }{
		{"Observation", "patient", "Observation.subject.where(resolve() is Patient)"},
		{"AllergyIntolerance", "patient", "AllergyIntolerance.patient"},
		{"MedicationRequest", "code", "(MedicationRequest.medication as CodeableConcept)"},
		{"Patient", "_id", "Resource.id"},
		{"Patient", "email", "Patient.telecom.where(system='email')"},
	}
	for _, tt := range tests {
		e, ok := Expression(tt.typ, tt.code)
		if !ok || e.String() != tt.want {
			t.Errorf("%s.%s = %v, want %q", tt.typ, tt.code, e, tt.want)
		}
	}
	if _, ok := Expression("Patient", "_text"); ok {
		t.Error("_text has no expression")
	}
}

func hasToken(r *Rows, param string) bool {
	for _, row := range r.Tokens {
		if row.Param == param {
			return true
		}
	}
	return false
}

// TestPruningKeepsResults checks on synthea-100 that the per-type pruned
// expression selects exactly what the published expression selects.
func TestPruningKeepsResults(t *testing.T) {
	ps, err := plans()
	if err != nil {
		t.Fatal(err)
	}
	full := map[string]*fhirpath.Expr{}
	for _, typ := range syntheaTypes {
		bodies := loadSynthea(t, typ)
		for _, pp := range ps[typ] {
			f := full[pp.p.ID]
			if f == nil {
				f = fhirpath.MustParse(pp.p.Expression)
				full[pp.p.ID] = f
			}
			for i, body := range bodies[:min(len(bodies), 200)] {
				res, err := Decode(body)
				if err != nil {
					t.Fatal(err)
				}
				a, errA := f.Eval(res)
				b, errB := pp.expr.Eval(res)
				if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
					t.Fatalf("%s %d %s: full %d items %v, pruned %d items %v", typ, i, pp.p.ID, len(a), errA, len(b), errB)
				}
			}
		}
	}
}
