package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// typeElements are the top-level elements of one resource type that
// _summary and _elements need (R4 search.html#summary): those marked
// isSummary, and the mandatory ones (min >= 1). Choice elements are named
// without [x].
type typeElements struct {
	Type      string
	Summary   []string
	Mandatory []string
}

func resourceElements(doc []byte) ([]typeElements, error) {
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
				Kind         string `json:"kind"`
				Abstract     bool   `json:"abstract"`
				Derivation   string `json:"derivation"`
				Snapshot     struct {
					Element []struct {
						Path      string `json:"path"`
						Min       int    `json:"min"`
						IsSummary bool   `json:"isSummary"`
					} `json:"element"`
				} `json:"snapshot"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(doc, &bundle); err != nil {
		return nil, fmt.Errorf("profiles-resources: %w", err)
	}
	var out []typeElements
	for _, e := range bundle.Entry {
		r := e.Resource
		if r.ResourceType != "StructureDefinition" || r.Kind != "resource" || r.Abstract ||
			r.Derivation == "constraint" || !fhir.IsResourceType(r.ID) {
			continue // profiles, Resource, DomainResource, and the R4B SubscriptionStatus
		}
		te := typeElements{Type: r.ID}
		for _, el := range r.Snapshot.Element {
			name, ok := strings.CutPrefix(el.Path, r.ID+".")
			if !ok || strings.Contains(name, ".") {
				continue
			}
			name = strings.TrimSuffix(name, "[x]")
			if el.IsSummary {
				te.Summary = append(te.Summary, name)
			}
			if el.Min >= 1 {
				te.Mandatory = append(te.Mandatory, name)
			}
		}
		out = append(out, te)
	}
	if len(out) != len(fhir.ResourceTypes()) {
		return nil, fmt.Errorf("profiles-resources: %d resource types, want %d", len(out), len(fhir.ResourceTypes()))
	}
	slices.SortFunc(out, func(a, b typeElements) int { return strings.Compare(a.Type, b.Type) })
	return out, nil
}

// writeElements appends the S (summary) and M (mandatory) lines.
func writeElements(w io.Writer, els []typeElements) {
	for _, te := range els {
		fmt.Fprintf(w, "S\t%s\t%s\n", te.Type, strings.Join(te.Summary, ","))
		if len(te.Mandatory) > 0 {
			fmt.Fprintf(w, "M\t%s\t%s\n", te.Type, strings.Join(te.Mandatory, ","))
		}
	}
}
