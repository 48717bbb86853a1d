package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// The npm copy of the R4 definitions departs from the official FHIR R4 4.0.1
// publication in a few known places. fhirgate follows official R4, so the
// generator reverts each departure and fails if one is no longer found
// (a sign the upstream copy changed and this list needs review).

// dropped are parameters that are not in official R4.
var dropped = []string{
	"DetectedIssue-status",
	"ServiceRequest-order-detail",
	"DeviceDefinition-classification",
}

// officialTargets are the R4 target lists of the parameters whose targets the
// npm copy changed (official search-parameters.json, version 4.0.1).
var officialTargets = map[string][]string{
	"clinical-patient":      {"Patient", "Group"},
	"MeasureReport-subject": {"Practitioner", "Group", "Device", "Patient", "PractitionerRole", "RelatedPerson", "Location"},
}

// wantOfType is how many parameter expressions use .ofType() where R4 writes
// `as`; each is reverted.
const wantOfType = 69

var (
	// (path.ofType(T)) is R4's (path as T).
	parenOfType = regexp.MustCompile(`\(([A-Za-z0-9_.]+)\.ofType\(([A-Za-z]+)\)\)`)
	// A bare path.ofType(T) is R4's path.as(T).
	bareOfType = regexp.MustCompile(`\.ofType\(([A-Za-z]+)\)`)
)

// revertOfType rewrites the npm copy's .ofType(T) to the R4 spelling. The
// meaning is the same; the official form is kept so that expressions match
// the published ones character for character.
func revertOfType(expr string) string {
	expr = parenOfType.ReplaceAllString(expr, "($1 as $2)")
	return bareOfType.ReplaceAllString(expr, ".as($1)")
}

func correctParams(params []*param) ([]*param, error) {
	out := params[:0:0]
	seen := map[string]bool{}
	for _, p := range params {
		if slices.Contains(dropped, p.ID) {
			seen[p.ID] = true
			continue
		}
		out = append(out, p)
	}
	for _, id := range dropped {
		if !seen[id] {
			return nil, fmt.Errorf("correction: %s not found to drop", id)
		}
	}
	byID := map[string]*param{}
	for _, p := range out {
		byID[p.ID] = p
	}
	for id, targets := range officialTargets {
		p := byID[id]
		if p == nil {
			return nil, fmt.Errorf("correction: %s not found", id)
		}
		if slices.Equal(p.Target, targets) {
			return nil, fmt.Errorf("correction: %s already has the R4 targets", id)
		}
		p.Target = slices.Clone(targets)
	}
	n := 0
	for _, p := range out {
		if strings.Contains(p.Expression, ".ofType(") {
			n++
			p.Expression = revertOfType(p.Expression)
		}
		for i := range p.Component {
			p.Component[i].Expression = revertOfType(p.Component[i].Expression)
		}
	}
	if n != wantOfType {
		return nil, fmt.Errorf("correction: %d expressions use .ofType(), want %d", n, wantOfType)
	}
	return out, checkParams(out, byID)
}

// checkParams verifies what package search relies on: known types, resource
// bases, resolvable components, and that no .ofType() is left.
func checkParams(params []*param, byID map[string]*param) error {
	for _, p := range params {
		if strings.Contains(p.Expression, "ofType") {
			return fmt.Errorf("%s: ofType left in %q", p.ID, p.Expression)
		}
		for _, b := range p.Base {
			if b != "Resource" && b != "DomainResource" && !fhir.IsResourceType(b) {
				return fmt.Errorf("%s: base %q is not an R4 resource type", p.ID, b)
			}
		}
		for _, t := range p.Target {
			if !fhir.IsResourceType(t) {
				return fmt.Errorf("%s: target %q is not an R4 resource type", p.ID, t)
			}
		}
		for _, c := range p.Component {
			id := strings.TrimPrefix(c.Definition, "http://hl7.org/fhir/SearchParameter/")
			if byID[id] == nil {
				return fmt.Errorf("%s: component %s unknown", p.ID, c.Definition)
			}
		}
	}
	anyT := anyTargetSet(params)
	all := fhir.ResourceTypes()
	all = slices.DeleteFunc(all, func(s string) bool { return s == "Parameters" })
	if len(anyT) != len(all) || !sameSet(anyT, all) {
		return fmt.Errorf("Reference(Any) target list has %d types, want the %d R4 types but Parameters", len(anyT), len(all))
	}
	return nil
}

// correctCompartment reverts the npm copy's Patient compartment to R4:
// Encounter is in it by `patient` (not `subject`), and Task is not in it.
func correctCompartment(c *compartment) error {
	fixed := 0
	for i := range c.Resource {
		r := &c.Resource[i]
		switch r.Code {
		case "Encounter":
			if !slices.Equal(r.Param, []string{"subject"}) {
				return fmt.Errorf("compartment: Encounter params %v, expected the npm copy's [subject]", r.Param)
			}
			r.Param = []string{"patient"}
			fixed++
		case "Task":
			if len(r.Param) == 0 {
				return fmt.Errorf("compartment: Task already outside the compartment")
			}
			r.Param = nil
			fixed++
		}
		if r.Code != "Encounter" && r.Code != "Task" && len(r.Param) > 0 && !fhir.IsResourceType(r.Code) {
			return fmt.Errorf("compartment: %q is not an R4 resource type", r.Code)
		}
	}
	if fixed != 2 {
		return fmt.Errorf("compartment: %d of 2 corrections applied", fixed)
	}
	return nil
}
