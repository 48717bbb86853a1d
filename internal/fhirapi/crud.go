package fhirapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/store"
)

// indexPreparer is a store that can do part of a write (search index
// extraction) before its transaction; the request's goroutine does it, in
// parallel with other requests, instead of the store's writer.
type indexPreparer interface {
	PrepareIndex(r *resource.Resource) error
}

// prepare runs the store's write preparation on r when the store has one.
// A failure only means the store does the work itself later.
func (s *Service) prepare(r *resource.Resource) {
	if p, ok := s.store.(indexPreparer); ok {
		p.PrepareIndex(r)
	}
}

// parseBody parses a request body as a resource of type typ.
func parseBody(typ string, body []byte) (*resource.Resource, error) {
	r, err := resource.Parse(body)
	if err != nil {
		return nil, fhir.Invalid("%v", err)
	}
	if r.Type != typ {
		return nil, fhir.Invalid("resourceType %q does not match the type %q of the URL", r.Type, typ)
	}
	return r, nil
}

// Create stores a new resource under a server-assigned id (R4
// http.html#create: an id in the body is ignored). With ifNoneExist it is a
// conditional create: one match returns that resource with 200 and creates
// nothing, several matches fail with 412.
func (s *Service) Create(ctx context.Context, typ string, body []byte, ifNoneExist string) (*Result, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	r, err := parseBody(typ, body)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.Create, Method: http.MethodPost, Type: typ, Body: body}); err != nil {
		return nil, err
	}
	s.prepare(r)
	var res *Result
	err = s.store.Write(ctx, func(tx store.Tx) error {
		res, err = s.create(ctx, tx, r, ifNoneExist)
		return err
	})
	return res, err
}

func (s *Service) create(ctx context.Context, tx store.Tx, r *resource.Resource, ifNoneExist string) (*Result, error) {
	if ifNoneExist != "" {
		existing, err := s.matchOne(ctx, tx, r.Type, ifNoneExist, "If-None-Exist")
		if err != nil {
			return nil, err
		}
		if existing != nil {
			return &Result{Status: http.StatusOK, Version: existing, Location: s.versionURL(existing)}, nil
		}
	}
	r.ID = newID(s.now())
	v, err := tx.Create(ctx, r)
	if err != nil {
		return nil, storeError(err, r.Type, r.ID)
	}
	return &Result{Status: http.StatusCreated, Version: v, Location: s.versionURL(v)}, nil
}

// Read returns the current version (R4 http.html#read): 404 when unknown,
// 410 when deleted.
func (s *Service) Read(ctx context.Context, typ, id string) (*Result, error) {
	if err := s.checkInstance(typ, id); err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.Read, Method: http.MethodGet, Type: typ, ID: id}); err != nil {
		return nil, err
	}
	v, err := s.store.Read(ctx, typ, id)
	if err != nil {
		return s.readError(v, err, typ, id)
	}
	if err := s.checkRestricted(ctx, authz.Read, v); err != nil {
		return nil, err
	}
	return &Result{Status: http.StatusOK, Version: v}, nil
}

// VRead returns one version (R4 http.html#vread).
func (s *Service) VRead(ctx context.Context, typ, id, vid string) (*Result, error) {
	if err := s.checkInstance(typ, id); err != nil {
		return nil, err
	}
	if err := checkID(vid); err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.VRead, Method: http.MethodGet, Type: typ, ID: id}); err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(vid, 10, 64)
	if err != nil || n <= 0 {
		return nil, fhir.NotFound("%s/%s has no version %q", typ, id, vid)
	}
	v, err := s.store.VRead(ctx, typ, id, n)
	if err != nil {
		return s.readError(v, err, typ, id)
	}
	if err := s.checkRestricted(ctx, authz.VRead, v); err != nil {
		return nil, err
	}
	return &Result{Status: http.StatusOK, Version: v}, nil
}

func (s *Service) readError(v *store.Version, err error, typ, id string) (*Result, error) {
	switch {
	case errors.Is(err, store.ErrDeleted):
		e := fhir.Gone("%s/%s was deleted", typ, id)
		return &Result{Status: http.StatusGone, Version: v}, e
	case errors.Is(err, store.ErrNotFound):
		return nil, fhir.NotFound("%s/%s is not known", typ, id)
	}
	return nil, err
}

func (s *Service) checkInstance(typ, id string) error {
	if err := checkType(typ); err != nil {
		return err
	}
	return checkID(id)
}

// Update stores a new version of typ/id, creating it when it does not exist
// (update as create, R4 http.html#update). The body's id must equal the
// URL's. ifMatch (an ETag) makes it a version-aware update: 412 when stale.
func (s *Service) Update(ctx context.Context, typ, id string, body []byte, ifMatch string) (*Result, error) {
	if err := s.checkInstance(typ, id); err != nil {
		return nil, err
	}
	r, err := parseBody(typ, body)
	if err != nil {
		return nil, err
	}
	vid, err := ParseETag(ifMatch)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.Update, Method: http.MethodPut, Type: typ, ID: id, Body: body}); err != nil {
		return nil, err
	}
	s.prepare(r)
	var res *Result
	err = s.store.Write(ctx, func(tx store.Tx) error {
		res, err = s.update(ctx, tx, r, id, vid)
		return err
	})
	return res, err
}

func (s *Service) update(ctx context.Context, tx store.Tx, r *resource.Resource, id string, ifMatch int64) (*Result, error) {
	switch {
	case r.ID == "":
		return nil, fhir.Invalid("the body has no id: an update must carry the id of the URL (%s)", id)
	case r.ID != id:
		return nil, fhir.Invalid("the body's id %q differs from the URL's id %q", r.ID, id)
	}
	v, created, err := tx.Update(ctx, r, ifMatch)
	if err != nil {
		return nil, storeError(err, r.Type, id)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return &Result{Status: status, Version: v, Location: s.versionURL(v)}, nil
}

// Delete records a deletion (R4 http.html#delete): 204 whether or not the
// resource existed; afterwards a read answers 410 and history keeps the
// deletion.
func (s *Service) Delete(ctx context.Context, typ, id, ifMatch string) (*Result, error) {
	if err := s.checkInstance(typ, id); err != nil {
		return nil, err
	}
	vid, err := ParseETag(ifMatch)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, authz.Request{Interaction: authz.Delete, Method: http.MethodDelete, Type: typ, ID: id}); err != nil {
		return nil, err
	}
	var res *Result
	err = s.store.Write(ctx, func(tx store.Tx) error {
		res, err = s.delete(ctx, tx, typ, id, vid)
		return err
	})
	return res, err
}

func (s *Service) delete(ctx context.Context, tx store.Tx, typ, id string, ifMatch int64) (*Result, error) {
	v, err := tx.Delete(ctx, typ, id, ifMatch)
	if errors.Is(err, store.ErrNotFound) {
		if ifMatch > 0 {
			return nil, fhir.PreconditionFailed("If-Match: %s/%s does not exist", typ, id)
		}
		return &Result{Status: http.StatusNoContent}, nil
	}
	if err != nil {
		return nil, storeError(err, typ, id)
	}
	return &Result{Status: http.StatusNoContent, Version: v}, nil
}

// storeError maps the store's sentinels to FHIR errors.
func storeError(err error, typ, id string) error {
	switch {
	case errors.Is(err, store.ErrVersionConflict):
		return fhir.PreconditionFailed("If-Match: %s/%s is not at that version; read it again and retry", typ, id)
	case errors.Is(err, store.ErrExists):
		return fhir.Conflict("%s/%s already exists", typ, id)
	case errors.Is(err, store.ErrNotFound):
		return fhir.NotFound("%s/%s is not known", typ, id)
	}
	return err
}
