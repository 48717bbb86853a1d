package search

import (
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
)

func TestRegistryCounts(t *testing.T) {
	all := All()
	if len(all) != 1375 {
		t.Fatalf("registry has %d parameters, want 1375 (1378 of the npm copy less 3 non-R4)", len(all))
	}
	byType := map[Type]int{}
	for _, p := range all {
		byType[p.Type]++
	}
	want := map[Type]int{TypeToken: 536, TypeReference: 472, TypeString: 133, TypeDate: 109,
		TypeComposite: 46, TypeURI: 45, TypeQuantity: 27, TypeNumber: 6, TypeSpecial: 1}
	for typ, n := range want {
		if byType[typ] != n {
			t.Errorf("%s parameters: %d, want %d", typ, byType[typ], n)
		}
	}
	if n := len(PatientCompartmentTypes()); n != 66 {
		t.Errorf("Patient compartment has %d resource types, want 66", n)
	}
}

func TestRegistryCorrections(t *testing.T) {
	for _, id := range []string{"DetectedIssue-status", "ServiceRequest-order-detail", "DeviceDefinition-classification"} {
		if _, ok := ByID(id); ok {
			t.Errorf("%s is not an R4 parameter but is in the registry", id)
		}
	}
	if _, ok := Lookup("DetectedIssue", "status"); ok {
		t.Error("DetectedIssue has no status parameter in R4")
	}
	tests := []struct {
		id, expr string
		targets  []string
	}{
		{"clinical-patient", "", []string{"Patient", "Group"}},
		{"MeasureReport-subject", "MeasureReport.subject", []string{"Practitioner", "Group", "Device", "Patient", "PractitionerRole", "RelatedPerson", "Location"}},
		{"Observation-value-string", "(Observation.value as string) | (Observation.value as CodeableConcept).text", nil},
		{"Condition-abatement-age", "Condition.abatement.as(Age) | Condition.abatement.as(Range)", nil},
		{"Goal-start-date", "(Goal.start as date)", nil},
		{"Patient-death-date", "(Patient.deceased as dateTime)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, ok := ByID(tt.id)
			if !ok {
				t.Fatal("missing")
			}
			if tt.expr != "" && p.Expression != tt.expr {
				t.Errorf("expression %q, want %q", p.Expression, tt.expr)
			}
			if tt.targets != nil && !slices.Equal(p.Targets, tt.targets) {
				t.Errorf("targets %v, want %v", p.Targets, tt.targets)
			}
		})
	}
	n := 0
	for _, p := range All() {
		if strings.Contains(p.Expression, "ofType") {
			t.Errorf("%s still uses ofType: %s", p.ID, p.Expression)
		}
		for _, c := range p.Components {
			if strings.Contains(c.Expression, "ofType") {
				t.Errorf("%s component still uses ofType: %s", p.ID, c.Expression)
			}
		}
		if strings.Contains(p.Expression, " as ") || strings.Contains(p.Expression, ".as(") {
			n++
		}
	}
	if n != 69 {
		t.Errorf("%d expressions use as, want the 69 reverted from ofType", n)
	}
	c, _ := ByID("Observation-code-value-quantity")
	if len(c.Components) != 2 || c.Components[0].Param.ID != "clinical-code" || c.Components[1].Expression != "value.as(Quantity)" {
		t.Errorf("Observation-code-value-quantity components %+v", c.Components)
	}
}

func TestPatientCompartment(t *testing.T) {
	tests := []struct {
		typ  string
		want []string
	}{
		{"Encounter", []string{"patient"}},
		{"Task", nil},
		{"Observation", []string{"subject", "performer"}},
		{"Coverage", []string{"policy-holder", "subscriber", "beneficiary", "payor"}},
		{"ExplanationOfBenefit", []string{"patient", "payee"}},
		{"Patient", []string{"link"}},
		{"Organization", nil},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			if got := PatientCompartment(tt.typ); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, typ := range PatientCompartmentTypes() {
		for _, code := range PatientCompartment(typ) {
			p, ok := Lookup(typ, code)
			if !ok || p.Type != TypeReference || !p.HasTarget("Patient") {
				t.Errorf("%s.%s: compartment parameter is not a reference to Patient", typ, code)
			}
		}
	}
}

func TestLookupCommon(t *testing.T) {
	for _, typ := range fhir.ResourceTypes() {
		for _, code := range []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content", "_query"} {
			if _, ok := Lookup(typ, code); !ok {
				t.Fatalf("%s has no %s", typ, code)
			}
		}
		_, ok := Lookup(typ, "_text")
		if ok == noDomain[typ] {
			t.Errorf("%s: _text present=%v", typ, ok)
		}
	}
	p, ok := Lookup("Observation", "patient")
	if !ok || p.ID != "clinical-patient" {
		t.Errorf("Observation patient = %v", p)
	}
	if _, ok := Lookup("Observation", "nope"); ok {
		t.Error("unknown code found")
	}
	if _, ok := Lookup("Nope", "_id"); ok {
		t.Error("unknown type found")
	}
	if ps := Params("Patient"); len(ps) < 20 || ps[0].Code > ps[1].Code {
		t.Errorf("Params(Patient) = %d params, unsorted?", len(ps))
	}
}
