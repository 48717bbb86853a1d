package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/internal/fhirpath"
	"github.com/fhirgate/fhirgate/internal/search"
)

// selector decides which resources of one type an export writes, and how.
type selector struct {
	typ string
	// comp restricts Patient and Group exports to Patient compartments;
	// nil at system level.
	comp *compartment
	// matchers must all match: the _typeFilter queries and the grant's
	// query restrictions of the type.
	matchers []Matcher
	// elements is _elements for the type (nil: whole resources).
	elements []string
}

// include reports whether body, the snapshot version (for a deletion, the
// version it ended), belongs to the export.
func (sel *selector) include(ctx context.Context, body []byte) (bool, error) {
	if body == nil {
		return sel.comp == nil && len(sel.matchers) == 0, nil
	}
	if sel.comp != nil {
		in, err := sel.comp.contains(sel.typ, body)
		if err != nil || !in {
			return false, err
		}
	}
	for _, m := range sel.matchers {
		ok, err := m.Match(ctx, body)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// render applies _elements: the stored JSON when there is none (no
// re-encoding), else the subset with the SUBSETTED tag (search.Subset,
// R4 search.html#elements).
func (sel *selector) render(body []byte) ([]byte, error) {
	if len(sel.elements) == 0 {
		return body, nil
	}
	return search.Subset(sel.typ, body, "", sel.elements)
}

// compartment is membership in the Patient compartment of some patients
// (R4 compartmentdefinition-patient.html), decided on the exact version
// exported: a resource is in it when one of its compartment parameters
// (e.g. Observation subject and performer) references one of the
// patients; a Patient is in its own compartment.
type compartment struct {
	// fhirBase is the server's FHIR base: absolute references to it count
	// like relative ones.
	fhirBase string
	// patients are the ids; nil means every patient (Patient-level export
	// without the patient parameter).
	patients map[string]bool
	exprs    map[string][]*fhirpath.Expr
}

func newCompartment(fhirBase string, patients map[string]bool, types []string) (*compartment, error) {
	c := &compartment{fhirBase: fhirBase, patients: patients, exprs: map[string][]*fhirpath.Expr{}}
	for _, t := range types {
		for _, code := range search.PatientCompartment(t) {
			e, ok := search.Expression(t, code)
			if !ok {
				return nil, fmt.Errorf("export: no expression for compartment parameter %s of %s", code, t)
			}
			c.exprs[t] = append(c.exprs[t], e)
		}
	}
	return c, nil
}

var patientRef = []byte("Patient/")

func (c *compartment) contains(typ string, body []byte) (bool, error) {
	if typ == "Patient" && c.patients == nil {
		return true, nil
	}
	// Any reference to a patient, relative or absolute, holds "Patient/":
	// a resource without it is in no patient's compartment, and a
	// Patient is then in one only through its own id.
	hasRef := bytes.Contains(body, patientRef)
	if !hasRef && typ != "Patient" {
		return false, nil
	}
	res, err := search.Decode(body)
	if err != nil {
		return false, fmt.Errorf("export: stored %s is not JSON: %w", typ, err)
	}
	if typ == "Patient" {
		if id, _ := res["id"].(string); c.patients[id] {
			return true, nil
		}
		if !hasRef {
			return false, nil
		}
	}
	for _, e := range c.exprs[typ] {
		items, err := e.Eval(res)
		if err != nil {
			return false, err
		}
		for _, it := range items {
			if id, ok := c.patientID(it.Value); ok && (c.patients == nil || c.patients[id]) {
				return true, nil
			}
		}
	}
	return false, nil
}

// patientID returns the id of a Patient that v, a Reference, points at on
// this server.
func (c *compartment) patientID(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	ref, _ := m["reference"].(string)
	return c.patientOf(ref)
}

func (c *compartment) patientOf(ref string) (string, bool) {
	r, ok := search.ParseReference(ref)
	if !ok || r.Type != "Patient" || r.ID == "" {
		return "", false
	}
	if r.URL != "" && !strings.HasPrefix(r.URL, c.fhirBase+"/") {
		return "", false // a patient of another server
	}
	return r.ID, true
}

// groupMembers returns the ids of the Patients among the active members of
// a Group (R4 group.html: member.inactive marks a former member).
func (c *compartment) groupMembers(body []byte) (map[string]bool, error) {
	var g struct {
		Member []struct {
			Entity struct {
				Reference string `json:"reference"`
			} `json:"entity"`
			Inactive bool `json:"inactive"`
		} `json:"member"`
	}
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, fmt.Errorf("export: stored Group is not valid: %w", err)
	}
	out := map[string]bool{}
	for _, m := range g.Member {
		if id, ok := c.patientOf(m.Entity.Reference); ok && !m.Inactive {
			out[id] = true
		}
	}
	return out, nil
}
