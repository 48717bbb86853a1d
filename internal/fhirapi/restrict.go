package fhirapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Query-restricted scopes on reads. A SMART v2 scope such as
// system/Observation.rs?category=laboratory (scopes-and-launch-context.html,
// "Finer-grained resource constraints") covers only the resources that
// match its query. Search applies the restriction in SQL; a read, a vread
// and a history entry are decided here, on the exact version returned,
// which the search index (of current versions) cannot see.

// ResourceMatcher decides whether one resource matches at least one of a
// list of search queries (each an AND of its parameters). A query it
// cannot evaluate is a 400 *fhir.Error.
type ResourceMatcher interface {
	MatchResource(ctx context.Context, typ string, queries []url.Values, body []byte) (bool, error)
}

// checkRestricted refuses with 403 a version that the query restrictions
// of the caller's grant for interaction in do not cover.
func (s *Service) checkRestricted(ctx context.Context, in authz.Interaction, v *store.Version) error {
	if s.restrict == nil || v == nil || v.Deleted {
		return nil
	}
	qs, err := s.restrict.Restrictions(ctx, v.Type, in)
	if err != nil || qs == nil {
		return err
	}
	ok, err := s.matchRestricted(ctx, v, qs)
	if err != nil || ok {
		return err
	}
	return fhir.Forbidden("the access token's scope does not cover %s/%s: %s access to %s is restricted to resources matching %s",
		v.Type, v.ID, in, v.Type, describe(qs))
}

// matchRestricted reports whether v matches one of the restrictions qs.
// Without a matcher, or with a restriction the matcher cannot apply, the
// version is refused: ignoring the restriction would widen the grant.
func (s *Service) matchRestricted(ctx context.Context, v *store.Version, qs []url.Values) (bool, error) {
	if s.rmatch == nil {
		return false, fhir.Forbidden("the access granted on %s is restricted by a query (%s), which this server cannot apply to a read",
			v.Type, describe(qs))
	}
	ok, err := s.rmatch.MatchResource(ctx, v.Type, qs, v.Body)
	if fe := fhir.AsError(err); fe != nil && fe.Status == http.StatusBadRequest {
		return false, fhir.Forbidden("the query restriction %s of the access granted on %s cannot be applied: %s",
			describe(qs), v.Type, fe.Diagnostics)
	}
	return ok, err
}

// describe renders restrictions as the scopes wrote them, ORed.
func describe(qs []url.Values) string {
	parts := make([]string, len(qs))
	for i, q := range qs {
		parts[i], _ = url.QueryUnescape(q.Encode())
	}
	return strings.Join(parts, " or ")
}

// filterHistory keeps the versions of a history page that the caller's
// query restrictions cover, each decided on its own content. A deletion
// has none: it is kept when the version it ended is covered, so that a
// client sees the end of what it could read, and nothing of the rest. In
// a type or system history, the entries of a type the grant does not
// cover at all are left out too.
func (s *Service) filterHistory(ctx context.Context, in authz.Interaction, versions []store.Version) ([]store.Version, error) {
	if s.restrict == nil {
		return versions, nil
	}
	byType := map[string]restriction{}
	out := versions[:0]
	for i := range versions {
		v := &versions[i]
		r, ok := byType[v.Type]
		if !ok {
			var err error
			if r, err = s.restrictionOf(ctx, v.Type, in); err != nil {
				return nil, err
			}
			byType[v.Type] = r
		}
		keep, err := s.historyVisible(ctx, r, v)
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, *v)
		}
	}
	return out, nil
}

// restriction is what the grant allows of one type: everything (all),
// nothing (neither), or the resources matching queries.
type restriction struct {
	all     bool
	queries []url.Values
}

func (s *Service) restrictionOf(ctx context.Context, typ string, in authz.Interaction) (restriction, error) {
	qs, err := s.restrict.Restrictions(ctx, typ, in)
	switch fe := fhir.AsError(err); {
	case fe != nil && fe.Status == http.StatusForbidden:
		return restriction{}, nil // not granted on this type: hidden
	case err != nil:
		return restriction{}, err
	}
	return restriction{all: qs == nil, queries: qs}, nil
}

func (s *Service) historyVisible(ctx context.Context, r restriction, v *store.Version) (bool, error) {
	switch {
	case r.all:
		return true, nil
	case r.queries == nil:
		return false, nil
	case !v.Deleted:
		return s.matchRestricted(ctx, v, r.queries)
	case v.VersionID <= 1:
		return false, nil
	}
	prev, err := s.store.VRead(ctx, v.Type, v.ID, v.VersionID-1)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted):
		return false, nil // nothing readable ended here
	case err != nil:
		return false, err
	}
	return s.matchRestricted(ctx, prev, r.queries)
}
