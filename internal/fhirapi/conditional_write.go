package fhirapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/store"
)

// UpdateConditional runs PUT [base]/[type]?criteria (R4
// http.html#cond-update). The criteria are a search, resolved inside the
// write transaction: no match creates the resource (under the body's id
// when it has one, as update as create); one match updates it, and a body
// id that names another resource is refused with 400; several matches
// answer 412.
func (s *Service) UpdateConditional(ctx context.Context, typ string, criteria url.Values, body []byte, ifMatch string) (*Result, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if len(criteria) == 0 {
		return nil, fhir.Invalid("PUT %s without an id needs search criteria (conditional update)", typ)
	}
	r, err := parseBody(typ, body)
	if err != nil {
		return nil, err
	}
	vid, err := ParseETag(ifMatch)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.Update, Method: http.MethodPut, Type: typ, Query: criteria, Body: body}); err != nil {
		return nil, err
	}
	var res *Result
	err = s.store.Write(ctx, func(tx store.Tx) error {
		existing, err := s.matchOne(ctx, tx, typ, criteria.Encode(), "conditional update")
		if err != nil {
			return err
		}
		switch {
		case existing != nil && r.ID != "" && r.ID != existing.ID:
			return fhir.Invalid("the body's id %q differs from the id %q of the resource the criteria match", r.ID, existing.ID)
		case existing != nil:
			r.ID = existing.ID
		case r.ID == "":
			r.ID = newID(s.now())
		}
		res, err = s.update(ctx, tx, r, r.ID, vid)
		return err
	})
	return res, err
}

// DeleteConditional runs DELETE [base]/[type]?criteria (R4
// http.html#cond-delete) for a single resource: no match is an ordinary
// delete of nothing (204), one match deletes it, several answer 412
// (CapabilityStatement conditionalDelete "single").
func (s *Service) DeleteConditional(ctx context.Context, typ string, criteria url.Values) (*Result, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if len(criteria) == 0 {
		return nil, fhir.Invalid("DELETE %s without an id needs search criteria (conditional delete)", typ)
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.Delete, Method: http.MethodDelete, Type: typ, Query: criteria}); err != nil {
		return nil, err
	}
	var res *Result
	err := s.store.Write(ctx, func(tx store.Tx) error {
		existing, err := s.matchOne(ctx, tx, typ, criteria.Encode(), "conditional delete")
		if err != nil {
			return err
		}
		if existing == nil {
			res = &Result{Status: http.StatusNoContent}
			return nil
		}
		res, err = s.delete(ctx, tx, typ, existing.ID, 0)
		return err
	})
	return res, err
}
