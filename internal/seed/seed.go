// Package seed generates fhirgate's deterministic synthetic payer data set:
// FHIR R4 Organizations (payers and providers), Practitioners, Patients with
// their Coverage, Encounters, Claims, ExplanationOfBenefits, Conditions,
// Observations (vital signs and labs, HbA1c among them), Procedures,
// MedicationRequests, Immunizations and AllergyIntolerances, and one Group
// of members per payer plan.
//
// The same Options always give byte-identical resources. Patient i's
// resources are drawn from a PCG stream seeded by the data set seed and i
// alone, so they do not depend on the order of generation nor on how many
// patients the set has (patient 7 of a 10-patient set equals patient 7 of a
// 10,000-patient set; only the Groups differ). Generation streams patient by
// patient: memory stays bounded whatever the size of the set.
//
// Every reference resolves inside the set, and every patient-linked resource
// names its Patient through the element behind the R4 Patient compartment
// parameter (subject, patient, beneficiary, member). Resources carry no meta:
// the server that loads them sets it.
package seed

import (
	"context"
	"errors"
	"fmt"
)

// Resource types of the data set, in the order Generate emits them first.
const (
	TypeOrganization         = "Organization"
	TypePractitioner         = "Practitioner"
	TypePatient              = "Patient"
	TypeCoverage             = "Coverage"
	TypeAllergyIntolerance   = "AllergyIntolerance"
	TypeEncounter            = "Encounter"
	TypeCondition            = "Condition"
	TypeObservation          = "Observation"
	TypeProcedure            = "Procedure"
	TypeImmunization         = "Immunization"
	TypeMedicationRequest    = "MedicationRequest"
	TypeClaim                = "Claim"
	TypeExplanationOfBenefit = "ExplanationOfBenefit"
	TypeGroup                = "Group"
)

// Types returns the resource types of the data set in emission order.
func Types() []string {
	return []string{
		TypeOrganization, TypePractitioner, TypePatient, TypeCoverage,
		TypeAllergyIntolerance, TypeEncounter, TypeCondition, TypeObservation,
		TypeProcedure, TypeImmunization, TypeMedicationRequest, TypeClaim,
		TypeExplanationOfBenefit, TypeGroup,
	}
}

// MaxPatients is the largest data set Generate accepts (about 830 million
// resources).
const MaxPatients = 10_000_000

// DefaultSeed is the seed of the data set when none is chosen.
const DefaultSeed = 1

// Options choose a data set.
type Options struct {
	// Patients is the number of patients, 0 to MaxPatients. Each brings
	// 50 to 100 resources (about 83 on average: 10,000 patients make about 830,000).
	Patients int
	// Seed selects the data set; ids differ between seeds, so data sets of
	// different seeds can be loaded side by side.
	Seed uint64
}

// ErrInvalidOptions is wrapped by the error of Generate and Counts for
// options out of range.
var ErrInvalidOptions = errors.New("seed: invalid options")

func (o Options) validate() error {
	if o.Patients < 0 || o.Patients > MaxPatients {
		return fmt.Errorf("%w: patients must be between 0 and %d, got %d", ErrInvalidOptions, MaxPatients, o.Patients)
	}
	return nil
}

// EmitFunc receives each resource of the data set: its type, its id and its
// JSON (one line, no trailing newline). The slice is reused once EmitFunc
// returns: copy it to keep it. An error stops the generation and is returned
// by Generate.
type EmitFunc func(resourceType, id string, resource []byte) error

// Generate emits the data set of opts: shared Organizations and
// Practitioners first, then each patient's resources patient by patient,
// then the Groups. It stops at the first error of emit or when ctx is done.
func Generate(ctx context.Context, opts Options, emit EmitFunc) error {
	if err := opts.validate(); err != nil {
		return err
	}
	g := newGenerator(opts.Seed, emit)
	if err := g.shared(); err != nil {
		return err
	}
	members := make([][]uint32, len(plans))
	for i := range opts.Patients {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		pl, err := g.patient(i)
		if err != nil {
			return err
		}
		members[pl] = append(members[pl], uint32(i))
	}
	return g.groups(members)
}

// Counts returns how many resources of each type Generate emits for opts,
// without generating them: it draws only each patient's outline. Types with
// no resource are absent.
func Counts(opts Options) (map[string]int, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := map[string]int{
		TypeOrganization: len(payers) + len(providerOrgs),
		TypePractitioner: practitionerCount(),
		TypeGroup:        len(plans),
	}
	for i := range opts.Patients {
		o := outlinePatient(patientRNG(opts.Seed, i))
		o.addCounts(c)
	}
	for t, n := range c {
		if n == 0 {
			delete(c, t)
		}
	}
	return c, nil
}

// PlanGroup names the Group of one payer plan.
type PlanGroup struct {
	// ID is the Group's resource id in the data set of the seed.
	ID string
	// Plan is the plan's name, also the Group's name.
	Plan string
	// Payer is the name of the payer Organization of the plan.
	Payer string
}

// Groups returns the Groups of the data set of seed (one per payer plan),
// for callers such as the demo mode that print a Group export URL.
func Groups(seed uint64) []PlanGroup {
	out := make([]PlanGroup, len(plans))
	for i, p := range plans {
		id := groupID(seed, i)
		out[i] = PlanGroup{ID: id.String(), Plan: p.name, Payer: payers[p.payer].name}
	}
	return out
}

// PatientID returns the id of patient i (0-based) in the data set of seed.
func PatientID(seed uint64, i int) string {
	id := makeID(seed, uint64(i)+1, 0)
	return id.String()
}
