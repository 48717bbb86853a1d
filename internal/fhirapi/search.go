package fhirapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
)

// SearchType runs GET [base]/[type]?params (R4 search.html).
func (s *Service) SearchType(ctx context.Context, typ string, params url.Values, strict bool) (*Result, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.SearchType, Method: http.MethodGet, Type: typ, Query: params}); err != nil {
		return nil, err
	}
	return s.runSearch(ctx, SearchRequest{Type: typ, Params: params, Strict: strict})
}

// SearchCompartment runs GET [base]/[compartment type]/[id]/[type]?params
// (R4 http.html#vsearch); only the Patient compartment is defined here.
func (s *Service) SearchCompartment(ctx context.Context, compType, compID, typ string, params url.Values, strict bool) (*Result, error) {
	if compType != "Patient" {
		if err := checkType(compType); err != nil {
			return nil, err
		}
		return nil, fhir.NotFound("compartment search is supported for the Patient compartment only, not %s", compType)
	}
	if err := checkID(compID); err != nil {
		return nil, err
	}
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.SearchType, Method: http.MethodGet, Type: typ, Query: params}); err != nil {
		return nil, err
	}
	return s.runSearch(ctx, SearchRequest{Type: typ, Params: params, Strict: strict, CompartmentType: compType, CompartmentID: compID})
}

func (s *Service) runSearch(ctx context.Context, req SearchRequest) (*Result, error) {
	if s.search == nil {
		return nil, fhir.Errorf(http.StatusNotImplemented, fhir.IssueNotSupported, "search is not available on this server")
	}
	return s.search.Search(ctx, req)
}
