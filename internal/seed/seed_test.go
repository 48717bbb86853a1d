package seed

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a := digest(t, Options{Patients: 40, Seed: 7})
	b := digest(t, Options{Patients: 40, Seed: 7})
	if a != b {
		t.Fatal("two runs with the same options differ")
	}
	if c := digest(t, Options{Patients: 40, Seed: 8}); c == a {
		t.Fatal("a different seed gives the same data set")
	}
}

// A patient's resources depend on the seed and its index only, not on how
// many patients the set has.
func TestPatientIndependentOfSetSize(t *testing.T) {
	small := generateSet(t, Options{Patients: 3, Seed: 5})
	large := generateSet(t, Options{Patients: 30, Seed: 5})
	for _, r := range small.list {
		if r.typ == TypeGroup {
			continue
		}
		other, ok := large.byRef[r.typ+"/"+r.id]
		if !ok {
			t.Fatalf("%s/%s of the 3-patient set is missing from the 30-patient set", r.typ, r.id)
		}
		if string(other.raw) != string(r.raw) {
			t.Fatalf("%s/%s differs between set sizes", r.typ, r.id)
		}
	}
}

func TestCountsMatchGenerate(t *testing.T) {
	for _, opts := range []Options{{0, 1}, {1, 1}, {25, 1}, {25, 99}, {120, 3}} {
		ds := generateSet(t, opts)
		got := map[string]int{}
		for _, r := range ds.list {
			got[r.typ]++
		}
		want, err := Counts(opts)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%+v: Counts = %v, Generate emitted %v", opts, want, got)
		}
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestResourcesAreValidJSONWithTypeAndID(t *testing.T) {
	ds := generateSet(t, Options{Patients: 60, Seed: 1})
	want := map[string]bool{}
	for _, typ := range Types() {
		want[typ] = true
	}
	for _, r := range ds.list {
		if !want[r.typ] || !fhir.IsResourceType(r.typ) {
			t.Fatalf("unexpected type %q", r.typ)
		}
		if got := str(r.m, "resourceType"); got != r.typ {
			t.Fatalf("%s/%s: resourceType %q", r.typ, r.id, got)
		}
		if got := str(r.m, "id"); got != r.id || !fhir.ValidID(got) || !uuidV4.MatchString(got) {
			t.Fatalf("%s: id %q (emitted %q) is not a valid id", r.typ, got, r.id)
		}
		if _, ok := r.m["meta"]; ok {
			t.Fatalf("%s/%s carries meta", r.typ, r.id)
		}
		if strings.ContainsAny(string(r.raw), "\n\r") {
			t.Fatalf("%s/%s spans several lines", r.typ, r.id)
		}
	}
	for typ := range want {
		if len(ds.ofType(typ)) == 0 {
			t.Errorf("no %s in a 60-patient set", typ)
		}
	}
}

func TestEveryReferenceResolves(t *testing.T) {
	ds := generateSet(t, Options{Patients: 80, Seed: 2})
	n := 0
	for _, r := range ds.list {
		for _, ref := range refs(r.m) {
			n++
			if _, ok := ds.byRef[ref]; !ok {
				t.Fatalf("%s/%s references %q, which is not in the set", r.typ, r.id, ref)
			}
		}
	}
	if n < len(ds.list) {
		t.Fatalf("only %d references in %d resources", n, len(ds.list))
	}
}

// compartmentElement is, per type, the element behind the R4 Patient
// CompartmentDefinition parameter the data set uses.
var compartmentElement = map[string]string{
	TypeCoverage:             "beneficiary",
	TypeEncounter:            "subject",
	TypeCondition:            "subject",
	TypeObservation:          "subject",
	TypeProcedure:            "subject",
	TypeMedicationRequest:    "subject",
	TypeImmunization:         "patient",
	TypeAllergyIntolerance:   "patient",
	TypeClaim:                "patient",
	TypeExplanationOfBenefit: "patient",
}

func TestPatientCompartmentAndCountsPerPatient(t *testing.T) {
	const patients = 300
	ds := generateSet(t, Options{Patients: patients, Seed: 11})
	perPatient := map[string]int{}
	for _, r := range ds.list {
		switch r.typ {
		case TypePatient:
			perPatient["Patient/"+r.id]++
		case TypeOrganization, TypePractitioner, TypeGroup:
		default:
			el, ok := compartmentElement[r.typ]
			if !ok {
				t.Fatalf("no compartment element for %s", r.typ)
			}
			ref := str(r.m, el, "reference")
			if !strings.HasPrefix(ref, "Patient/") || ds.byRef[ref] == nil {
				t.Fatalf("%s/%s: %s = %q, not a Patient of the set", r.typ, r.id, el, ref)
			}
			perPatient[ref]++
		}
	}
	if len(perPatient) != patients {
		t.Fatalf("%d patients have resources, want %d", len(perPatient), patients)
	}
	total := 0
	for ref, n := range perPatient {
		total += n
		if n < minPerPatient || n > maxPerPatient {
			t.Errorf("%s has %d resources, want %d to %d", ref, n, minPerPatient, maxPerPatient)
		}
	}
	t.Logf("%d patients, %.1f resources per patient", patients, float64(total)/patients)
}

// The outline bounds hold over many patients and seeds, and the per-type
// counts add up to the outline's total.
func TestOutlineBounds(t *testing.T) {
	lo, hi := 1000, 0
	for s := range uint64(20) {
		for i := range 1000 {
			o := outlinePatient(patientRNG(s, i))
			n := o.total()
			lo, hi = min(lo, n), max(hi, n)
			if n < minPerPatient || n > maxPerPatient {
				t.Fatalf("seed %d patient %d: %d resources", s, i, n)
			}
			c := map[string]int{}
			o.addCounts(c)
			sum := 0
			for _, v := range c {
				sum += v
			}
			if sum != n {
				t.Fatalf("seed %d patient %d: counts add to %d, total says %d", s, i, sum, n)
			}
		}
	}
	t.Logf("resources per patient over 20,000 patients: %d to %d", lo, hi)
}

func TestHbA1cObservations(t *testing.T) {
	ds := generateSet(t, Options{Patients: 30, Seed: 1})
	n := 0
	for _, r := range ds.ofType(TypeObservation) {
		if str(r.m, "code", "coding", 0, "code") != "4548-4" {
			continue
		}
		n++
		if got := str(r.m, "code", "coding", 0, "system"); got != "http://loinc.org" {
			t.Fatalf("HbA1c code system %q", got)
		}
		if got := str(r.m, "code", "text"); got != "Hemoglobin A1c/Hemoglobin.total in Blood" {
			t.Fatalf("HbA1c text %q", got)
		}
		if str(r.m, "category", 0, "coding", 0, "code") != "laboratory" {
			t.Fatalf("HbA1c category %v", r.m["category"])
		}
		q := path(r.m, "valueQuantity").(map[string]any)
		v, _ := q["value"].(float64)
		if q["unit"] != "%" || q["code"] != "%" || q["system"] != "http://unitsofmeasure.org" || v < 4 || v > 12 {
			t.Fatalf("HbA1c valueQuantity %v", q)
		}
	}
	if n == 0 {
		t.Fatal("no HbA1c (LOINC 4548-4) Observation")
	}
}

func TestGroupsCoverEveryPatientOncePerPlan(t *testing.T) {
	ds := generateSet(t, Options{Patients: 200, Seed: 4})
	groups := ds.ofType(TypeGroup)
	if len(groups) != len(plans) {
		t.Fatalf("%d Groups, want one per plan (%d)", len(groups), len(plans))
	}
	planOfPatient := map[string]string{} // from Coverage
	for _, c := range ds.ofType(TypeCoverage) {
		ref := str(c.m, "beneficiary", "reference")
		for _, cl := range path(c.m, "class").([]any) {
			if str(cl, "type", "coding", 0, "code") == "plan" {
				planOfPatient[ref] = str(cl, "value")
			}
		}
		payer := str(c.m, "payor", 0, "reference")
		if o := ds.byRef[payer]; o == nil || str(o.m, "type", 0, "coding", 0, "code") != "pay" {
			t.Fatalf("Coverage %s payor %q is not a payer Organization", c.id, payer)
		}
	}
	seen := map[string]int{}
	names := map[string]bool{}
	byID := map[string]PlanGroup{}
	for _, pg := range Groups(4) {
		byID[pg.ID] = pg
	}
	for _, g := range groups {
		if g.m["type"] != "person" || g.m["actual"] != true {
			t.Fatalf("Group %s: type %v actual %v", g.id, g.m["type"], g.m["actual"])
		}
		name := str(g.m, "name")
		if byID[g.id].Plan != name {
			t.Fatalf("Group %s named %q; Groups() says %q", g.id, name, byID[g.id].Plan)
		}
		names[name] = true
		planKey := str(g.m, "identifier", 0, "value")
		members, _ := g.m["member"].([]any)
		if q, _ := g.m["quantity"].(float64); int(q) != len(members) {
			t.Fatalf("Group %s: quantity %v, %d members", name, g.m["quantity"], len(members))
		}
		for _, m := range members {
			ref := str(m, "entity", "reference")
			if !strings.HasPrefix(ref, "Patient/") || ds.byRef[ref] == nil {
				t.Fatalf("Group %s member %q is not a Patient of the set", name, ref)
			}
			if planOfPatient[ref] != planKey {
				t.Fatalf("%s is in Group %s but covered by %q", ref, planKey, planOfPatient[ref])
			}
			seen[ref]++
		}
	}
	if len(names) != len(plans) {
		t.Fatalf("Group names are not distinct: %v", names)
	}
	for _, p := range ds.ofType(TypePatient) {
		if n := seen["Patient/"+p.id]; n != 1 {
			t.Fatalf("Patient/%s is a member of %d Groups, want 1", p.id, n)
		}
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	layout := time.RFC3339
	if len(s) == len("2006-01-02") {
		layout = time.DateOnly
	}
	tm, err := time.Parse(layout, s)
	if err != nil {
		t.Fatalf("bad date %q: %v", s, err)
	}
	return tm
}

// Dates are consistent: encounters within the patient's life and coverage,
// before asOf; claims after their encounter, EOBs after their claim, and
// claims and EOBs point at the patient's own Coverage and the payer of it.
func TestDatesAndClaimLinks(t *testing.T) {
	ds := generateSet(t, Options{Patients: 150, Seed: 9})
	end := time.Unix(asOf, 0)
	coverageOf := map[string]*res{}
	for _, c := range ds.ofType(TypeCoverage) {
		coverageOf[str(c.m, "beneficiary", "reference")] = c
	}
	for _, e := range ds.ofType(TypeEncounter) {
		p := ds.byRef[str(e.m, "subject", "reference")]
		start := parseTime(t, str(e.m, "period", "start"))
		stop := parseTime(t, str(e.m, "period", "end"))
		birth := parseTime(t, str(p.m, "birthDate"))
		covStart := parseTime(t, str(coverageOf["Patient/"+p.id].m, "period", "start"))
		if start.Before(birth) || start.Before(covStart) || !stop.After(start) || stop.After(end) {
			t.Fatalf("Encounter %s %v-%v: birth %v, coverage from %v", e.id, start, stop, birth, covStart)
		}
	}
	for _, typ := range []string{TypeClaim, TypeExplanationOfBenefit} {
		for _, c := range ds.ofType(typ) {
			patient := str(c.m, "patient", "reference")
			cov := coverageOf[patient]
			if got := str(c.m, "insurance", 0, "coverage", "reference"); got != "Coverage/"+cov.id {
				t.Fatalf("%s %s: coverage %q, patient's is %s", typ, c.id, got, cov.id)
			}
			if got, want := str(c.m, "insurer", "reference"), str(cov.m, "payor", 0, "reference"); got != want {
				t.Fatalf("%s %s: insurer %q, coverage payor %q", typ, c.id, got, want)
			}
			if !strings.HasPrefix(str(c.m, "provider", "reference"), "Organization/") {
				t.Fatalf("%s %s: provider %v", typ, c.id, c.m["provider"])
			}
			enc := ds.byRef[str(c.m, "item", 0, "encounter", 0, "reference")]
			encEnd := parseTime(t, str(enc.m, "period", "end"))
			if created := parseTime(t, str(c.m, "created")); !created.After(encEnd) {
				t.Fatalf("%s %s created %v, encounter ended %v", typ, c.id, created, encEnd)
			}
		}
	}
	for _, eob := range ds.ofType(TypeExplanationOfBenefit) {
		claim := ds.byRef[str(eob.m, "claim", "reference")]
		if claim == nil || claim.typ != TypeClaim {
			t.Fatalf("EOB %s claim %v", eob.id, eob.m["claim"])
		}
		if !parseTime(t, str(eob.m, "created")).After(parseTime(t, str(claim.m, "created"))) {
			t.Fatalf("EOB %s is not after its Claim", eob.id)
		}
		if str(eob.m, "patient", "reference") != str(claim.m, "patient", "reference") {
			t.Fatalf("EOB %s and its Claim name different patients", eob.id)
		}
	}
}

func TestSharedResourcesEmittedOnce(t *testing.T) {
	ds := generateSet(t, Options{Patients: 50, Seed: 3})
	if got, want := len(ds.ofType(TypeOrganization)), len(payers)+len(providerOrgs); got != want {
		t.Fatalf("%d Organizations, want %d", got, want)
	}
	if got, want := len(ds.ofType(TypePractitioner)), practitionerCount(); got != want {
		t.Fatalf("%d Practitioners, want %d", got, want)
	}
	for _, p := range ds.ofType(TypePractitioner) {
		v := str(p.m, "identifier", 0, "value")
		if str(p.m, "identifier", 0, "system") != npiSys || len(v) != 10 || npiCheckDigit([]byte(v[:9])) != v[9] {
			t.Fatalf("Practitioner %s NPI %q", p.id, v)
		}
	}
}

func TestNPICheckDigit(t *testing.T) {
	// CMS's worked example: 123456789 takes the check digit 3.
	if got := npiCheckDigit([]byte("123456789")); got != '3' {
		t.Fatalf("check digit %c, want 3", got)
	}
}

func TestPatientIDAndGroupsMatchGenerate(t *testing.T) {
	ds := generateSet(t, Options{Patients: 3, Seed: 12})
	for i := range 3 {
		if ds.byRef["Patient/"+PatientID(12, i)] == nil {
			t.Fatalf("PatientID(12, %d) is not a Patient of the set", i)
		}
	}
	for _, g := range Groups(12) {
		if r := ds.byRef["Group/"+g.ID]; r == nil || str(r.m, "name") != g.Plan {
			t.Fatalf("Groups() names %+v, not in the set", g)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, n := range []int{-1, MaxPatients + 1} {
		err := Generate(context.Background(), Options{Patients: n}, func(string, string, []byte) error { return nil })
		if !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Patients %d: Generate error %v, want ErrInvalidOptions", n, err)
		}
		if _, err := Counts(Options{Patients: n}); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Patients %d: Counts error %v, want ErrInvalidOptions", n, err)
		}
	}
}

func TestGenerateStops(t *testing.T) {
	t.Run("emit error", func(t *testing.T) {
		boom := errors.New("boom")
		n := 0
		err := Generate(context.Background(), Options{Patients: 10, Seed: 1}, func(typ, _ string, _ []byte) error {
			n++
			if typ == TypeEncounter {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("error %v, want boom", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		patients := 0
		err := Generate(ctx, Options{Patients: 1000, Seed: 1}, func(typ, _ string, _ []byte) error {
			if typ == TypePatient {
				patients++
				if patients == 100 {
					cancel()
				}
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if patients >= 1000 {
			t.Fatal("generation went on after cancel")
		}
	})
}

func TestMakeIDIsInjective(t *testing.T) {
	seen := map[rid]bool{}
	for _, seed := range []uint64{0, 1, 2, 1 << 40} {
		for scope := range uint64(200) {
			for ord := range 100 {
				id := makeID(seed, scope, ord)
				if seen[id] {
					t.Fatalf("collision at seed %d scope %d ordinal %d", seed, scope, ord)
				}
				if !uuidV4.MatchString(id.String()) {
					t.Fatalf("%s is not a version 4 UUID", id.String())
				}
				seen[id] = true
			}
		}
	}
}
