package fhirapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
)

// Version is fhirgate's release, reported in CapabilityStatement.software.
var Version = "0.1.0-dev"

// CapabilityStatement is the R4 CapabilityStatement, reduced to the
// elements fhirgate states (R4 capabilitystatement.html).
type CapabilityStatement struct {
	ResourceType   string       `json:"resourceType"`
	Status         string       `json:"status"`
	Date           string       `json:"date"`
	Publisher      string       `json:"publisher,omitempty"`
	Kind           string       `json:"kind"`
	Instantiates   []string     `json:"instantiates,omitempty"`
	Software       *CapSoftware `json:"software,omitempty"`
	Implementation *CapImpl     `json:"implementation,omitempty"`
	FHIRVersion    string       `json:"fhirVersion"`
	Format         []string     `json:"format"`
	Rest           []CapRest    `json:"rest"`
}

// CapSoftware is CapabilityStatement.software.
type CapSoftware struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// CapImpl is CapabilityStatement.implementation.
type CapImpl struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

// CapRest is CapabilityStatement.rest.
type CapRest struct {
	Mode        string           `json:"mode"`
	Security    *CapSecurity     `json:"security,omitempty"`
	Resource    []CapResource    `json:"resource"`
	Interaction []CapInteraction `json:"interaction"`
	Operation   []CapOperation   `json:"operation,omitempty"`
}

// CapSecurity is CapabilityStatement.rest.security with the SMART oauth-uris
// extension (SMART App Launch conformance.html).
type CapSecurity struct {
	Extension   []Extension       `json:"extension,omitempty"`
	Service     []CodeableConcept `json:"service,omitempty"`
	Description string            `json:"description,omitempty"`
}

// Extension is a FHIR Extension with the value types used here.
type Extension struct {
	URL       string      `json:"url"`
	Extension []Extension `json:"extension,omitempty"`
	ValueURI  string      `json:"valueUri,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CapResource is CapabilityStatement.rest.resource.
type CapResource struct {
	Type              string           `json:"type"`
	Interaction       []CapInteraction `json:"interaction"`
	Versioning        string           `json:"versioning"`
	ReadHistory       bool             `json:"readHistory"`
	UpdateCreate      bool             `json:"updateCreate"`
	ConditionalCreate bool             `json:"conditionalCreate"`
	ConditionalRead   string           `json:"conditionalRead"`
	ConditionalUpdate bool             `json:"conditionalUpdate"`
	ConditionalDelete string           `json:"conditionalDelete"`
	SearchInclude     []string         `json:"searchInclude,omitempty"`
	SearchRevInclude  []string         `json:"searchRevInclude,omitempty"`
	SearchParam       []CapSearchParam `json:"searchParam,omitempty"`
	Operation         []CapOperation   `json:"operation,omitempty"`
}

// CapInteraction is an interaction code.
type CapInteraction struct {
	Code string `json:"code"`
}

// CapSearchParam is CapabilityStatement.rest.resource.searchParam.
type CapSearchParam struct {
	Name       string `json:"name"`
	Definition string `json:"definition,omitempty"`
	Type       string `json:"type"`
}

// CapOperation is an operation with its canonical definition.
type CapOperation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// typeInteractions are the interactions this package implements for every
// resource type; the HTTP router serves exactly these.
var typeInteractions = []authz.Interaction{
	authz.Read, authz.VRead, authz.Update, authz.Delete,
	authz.HistoryInstance, authz.HistoryType, authz.Create,
}

// systemInteractions are the system-level interactions implemented here.
var systemInteractions = []authz.Interaction{authz.Transaction, authz.Batch, authz.HistorySystem}

// CapabilityStatement describes what this server implements: every R4
// resource type with the interactions above, plus what hooks add.
func (s *Service) CapabilityStatement(started time.Time) *CapabilityStatement {
	cs := &CapabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           fhir.FormatInstant(started),
		Publisher:      "fhirgate",
		Kind:           "instance",
		Software:       &CapSoftware{Name: "fhirgate", Version: Version},
		Implementation: &CapImpl{Description: "fhirgate FHIR R4 server", URL: s.base},
		FHIRVersion:    "4.0.1",
		Format:         []string{"json", fhir.MediaJSON, fhir.MediaPlainJSON},
	}
	rest := CapRest{
		Mode: "server",
		Security: &CapSecurity{
			Service: []CodeableConcept{{Coding: []Coding{{
				System: "http://terminology.hl7.org/CodeSystem/restful-security-service", Code: "SMART-on-FHIR"}}}},
			Extension: []Extension{{
				URL: "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
				Extension: []Extension{
					{URL: "token", ValueURI: s.root + "/auth/token"},
					{URL: "introspect", ValueURI: s.root + "/auth/introspect"},
				},
			}},
			Description: "SMART Backend Services: client_credentials with private_key_jwt at the token endpoint; HTTP Basic for clients registered with the basic grant.",
		},
	}
	for _, t := range fhir.ResourceTypes() {
		r := CapResource{
			Type: t, Versioning: "versioned", ReadHistory: true, UpdateCreate: true,
			ConditionalCreate: true, ConditionalRead: "not-supported", ConditionalDelete: "not-supported",
		}
		for _, in := range typeInteractions {
			r.Interaction = append(r.Interaction, CapInteraction{Code: string(in)})
		}
		rest.Resource = append(rest.Resource, r)
	}
	for _, in := range systemInteractions {
		rest.Interaction = append(rest.Interaction, CapInteraction{Code: string(in)})
	}
	cs.Rest = []CapRest{rest}
	for _, h := range s.capHooks {
		h(cs)
	}
	return cs
}

// Metadata answers GET [base]/metadata.
func (s *Service) Metadata(started time.Time) *Result {
	b, _ := json.Marshal(s.CapabilityStatement(started))
	return &Result{Status: http.StatusOK, Body: b}
}
