package bulk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// Level is the scope of an export (Bulk Data 2.0 export.html#endpoint---all-patients
// and following): the whole system, all patients, or one Group's members.
type Level string

// Export levels.
const (
	System  Level = "system"
	Patient Level = "patient"
	Group   Level = "group"
)

// FormatNDJSON is the _outputFormat of NDJSON, which every server SHALL
// support (export.html#query-parameters) and the default when none is given.
const FormatNDJSON = fhir.MediaNDJSON

// Request is an export kick-off with every parameter of Bulk Data 2.0
// (export.html#query-parameters). Zero fields are not sent.
type Request struct {
	// Level is the export level; empty means Group when GroupID is set and
	// System otherwise.
	Level Level
	// GroupID is the Group whose members are exported (Group level only).
	GroupID string
	// OutputFormat is _outputFormat; empty lets the server use NDJSON.
	OutputFormat string
	// Since is _since: only resources changed after this instant.
	Since time.Time
	// Types is _type: only these resource types.
	Types []string
	// Elements is _elements: "Type.element" or "element" paths to keep.
	Elements []string
	// Patients is the patient parameter: references such as "Patient/123"
	// (Patient and Group levels only). The specification allows it only in
	// a POST body, so setting it makes the kick-off a POST.
	Patients []string
	// TypeFilters is _typeFilter: queries such as
	// "MedicationRequest?status=active", one per entry.
	TypeFilters []string
	// IncludeAssociatedData lists includeAssociatedData codes, e.g.
	// "LatestProvenanceResources".
	IncludeAssociatedData []string
	// POST sends the kick-off as a POST with a Parameters body even
	// without Patients.
	POST bool
	// Lenient adds "handling=lenient" to Prefer, asking the server to
	// ignore parameters it does not support instead of failing.
	Lenient bool
}

func (r Request) level() Level {
	if r.Level != "" {
		return r.Level
	}
	if r.GroupID != "" {
		return Group
	}
	return System
}

func (r Request) validate() error {
	switch r.level() {
	case System:
		if r.GroupID != "" {
			return errors.New("bulk: GroupID needs the group level")
		}
		if len(r.Patients) > 0 {
			return errors.New("bulk: the patient parameter applies to patient and group exports only")
		}
	case Patient:
		if r.GroupID != "" {
			return errors.New("bulk: GroupID needs the group level")
		}
	case Group:
		if r.GroupID == "" {
			return errors.New("bulk: a group export needs GroupID")
		}
	default:
		return fmt.Errorf("bulk: unknown level %q", r.Level)
	}
	return nil
}

// path is the kick-off endpoint relative to the FHIR base.
func (r Request) path() string {
	switch r.level() {
	case Patient:
		return "Patient/$export"
	case Group:
		return "Group/" + url.PathEscape(r.GroupID) + "/$export"
	}
	return "$export"
}

func (r Request) usePOST() bool { return r.POST || len(r.Patients) > 0 }

// query encodes the parameters for a GET kick-off. List parameters are
// comma-joined, which servers SHALL treat like repeats; _typeFilter values
// are repeated instead because a query may itself hold commas.
func (r Request) query() url.Values {
	q := url.Values{}
	if r.OutputFormat != "" {
		q.Set("_outputFormat", r.OutputFormat)
	}
	if !r.Since.IsZero() {
		q.Set("_since", formatInstant(r.Since))
	}
	if len(r.Types) > 0 {
		q.Set("_type", strings.Join(r.Types, ","))
	}
	if len(r.Elements) > 0 {
		q.Set("_elements", strings.Join(r.Elements, ","))
	}
	if len(r.IncludeAssociatedData) > 0 {
		q.Set("includeAssociatedData", strings.Join(r.IncludeAssociatedData, ","))
	}
	for _, f := range r.TypeFilters {
		q.Add("_typeFilter", f)
	}
	return q
}

// parameter is one Parameters.parameter with the value types the Bulk Data
// OperationDefinitions give each parameter.
type parameter struct {
	Name           string     `json:"name"`
	ValueString    string     `json:"valueString,omitempty"`
	ValueInstant   string     `json:"valueInstant,omitempty"`
	ValueCode      string     `json:"valueCode,omitempty"`
	ValueReference *reference `json:"valueReference,omitempty"`
}

type reference struct {
	Reference string `json:"reference"`
}

// parameters encodes the POST body: a FHIR Parameters resource with one
// entry per value.
func (r Request) parameters() ([]byte, error) {
	var ps []parameter
	add := func(name string, values []string, mk func(string) parameter) {
		for _, v := range values {
			p := mk(v)
			p.Name = name
			ps = append(ps, p)
		}
	}
	str := func(v string) parameter { return parameter{ValueString: v} }
	if r.OutputFormat != "" {
		add("_outputFormat", []string{r.OutputFormat}, str)
	}
	if !r.Since.IsZero() {
		add("_since", []string{formatInstant(r.Since)}, func(v string) parameter { return parameter{ValueInstant: v} })
	}
	add("_type", r.Types, str)
	add("_elements", r.Elements, str)
	add("patient", r.Patients, func(v string) parameter { return parameter{ValueReference: &reference{Reference: v}} })
	add("_typeFilter", r.TypeFilters, str)
	add("includeAssociatedData", r.IncludeAssociatedData, func(v string) parameter { return parameter{ValueCode: v} })
	return json.Marshal(struct {
		ResourceType string      `json:"resourceType"`
		Parameter    []parameter `json:"parameter,omitempty"`
	}{"Parameters", ps})
}

// formatInstant renders a FHIR instant in UTC with as many fractional
// digits as needed (R4 datatypes.html#instant).
func formatInstant(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
