// Package fhirsearch is fhirgate's FHIR search engine (R4 search.html): it
// implements fhirapi.Searcher for type-level and compartment searches
// (GET and POST _search), and fhirapi.ConditionalMatcher for conditional
// create, update and delete. Parsing comes from package search, the SQL
// from sqlstore; this package applies the caller's grant (query-restricted
// scopes, per-type permission for _include and _revinclude), result
// controls, and writes the searchset Bundle with its paging links.
//
// Result controls (R4 search.html#return):
//
//   - _count: page size, default Config.DefaultCount (50), at most
//     Config.MaxCount (1000). Pages are keyset-based: the next and previous
//     links carry an opaque _cursor holding the sort key of the row they
//     continue from, so they stay right while resources are written.
//   - _sort: several keys, "-" for descending; a resource with several
//     values sorts by its smallest ascending and its largest descending,
//     resources without a value come last; _id and _lastUpdated work too.
//     Without _sort, results come in the order resources were created,
//     except for a search whose only criterion is one date
//     window (date=ge2024-03-01&date=lt2024-04-01): it comes in date
//     order, each resource at its earliest date inside the window, so
//     that a page costs the same however many resources the window holds
//     (internal/sqlstore/search_window.go).
//   - _total: accurate and estimate both count the matches (a count over
//     the index is cheap enough that an estimate would buy little); without
//     _total the Bundle has a total only when the first page holds every
//     match, which costs nothing.
//   - _summary (true, text, data, count) and _elements subset the matches
//     and tag them SUBSETTED; included resources are returned whole.
//   - _include and _revinclude, with :iterate up to four rounds, add at most
//     Config.MaxIncludes resources (a warning says when more were left out),
//     only of types the caller may read, filtered by the caller's query
//     restrictions on those types.
//
// Unknown or unsupported parameters are ignored and reported in an
// OperationOutcome entry with search.mode outcome, or refused with 400
// under Prefer: handling=strict; malformed values are refused with 400
// naming the parameter (search.html#errors).
package fhirsearch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Store is what the engine needs from the database (sqlstore.Store).
type Store interface {
	Search(ctx context.Context, spec sqlstore.SearchSpec) (*sqlstore.SearchPage, error)
	Includes(ctx context.Context, matches []sqlstore.Match, spec sqlstore.IncludeSpec) ([]sqlstore.Match, bool, error)
	MatchTx(ctx context.Context, tx store.Tx, q *search.Query, limit int) ([]*store.Version, error)
}

// Config configures an Engine.
type Config struct {
	Store Store
	// Base is the FHIR base URL (fhirapi.Service.Base()); links and
	// fullUrls are built under it.
	Base string
	// Authorizer decides whether included resources of a type may be
	// returned (authz.Read per type); default authz.RootOnly.
	Authorizer authz.Authorizer
	// Restrictor gives the query restrictions of the caller's grant
	// (default authz.NoRestrictions).
	Restrictor authz.Restrictor
	// DefaultCount is the page size without _count (default 50);
	// MaxCount caps _count (default 1000).
	DefaultCount, MaxCount int
	// MaxIncludes caps the resources _include and _revinclude add to one
	// page (default 1000).
	MaxIncludes int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Engine runs searches.
type Engine struct {
	cfg Config
}

var (
	_ fhirapi.Searcher           = (*Engine)(nil)
	_ fhirapi.ConditionalMatcher = (*Engine)(nil)
)

// New returns an Engine.
func New(cfg Config) *Engine {
	if cfg.Authorizer == nil {
		cfg.Authorizer = authz.RootOnly
	}
	if cfg.Restrictor == nil {
		cfg.Restrictor = authz.NoRestrictions
	}
	if cfg.DefaultCount <= 0 {
		cfg.DefaultCount = 50
	}
	if cfg.MaxCount <= 0 {
		cfg.MaxCount = 1000
	}
	cfg.DefaultCount = min(cfg.DefaultCount, cfg.MaxCount)
	if cfg.MaxIncludes <= 0 {
		cfg.MaxIncludes = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Base = strings.TrimSuffix(cfg.Base, "/")
	return &Engine{cfg: cfg}
}

// Search runs one search and returns its searchset Bundle. The caller
// (fhirapi) has already authorized the search interaction on req.Type.
func (e *Engine) Search(ctx context.Context, req fhirapi.SearchRequest) (*fhirapi.Result, error) {
	q, warnings, err := search.ParseQuery(req.Type, req.Params, req.Strict)
	if err != nil {
		return nil, err
	}
	e.localReferences(q.Where)
	restrict, err := e.restrictions(ctx, req.Type, authz.SearchType)
	if err != nil {
		return nil, err
	}
	spec := sqlstore.SearchSpec{Query: q, Restrict: restrict, Cursor: q.Cursor,
		CompartmentType: req.CompartmentType, CompartmentID: req.CompartmentID,
		Count: e.cfg.DefaultCount, Total: q.Total == search.TotalAccurate || q.Total == search.TotalEstimate}
	if q.HasCount {
		spec.Count = min(q.Count, e.cfg.MaxCount)
	}
	if q.Summary == search.SummaryCount {
		spec.Count, spec.Total = 0, true
	}
	page, err := e.cfg.Store.Search(ctx, spec)
	if err != nil {
		return nil, err
	}
	var included []sqlstore.Match
	if len(page.Matches) > 0 && (len(q.Includes) > 0 || len(q.RevIncludes) > 0) {
		var truncated bool
		included, truncated, err = e.cfg.Store.Includes(ctx, page.Matches, sqlstore.IncludeSpec{
			Includes: q.Includes, RevIncludes: q.RevIncludes, Allow: e.allowInclude, Limit: e.cfg.MaxIncludes})
		if err != nil {
			return nil, err
		}
		if truncated {
			warnings = append(warnings, fhir.Issue{Severity: fhir.SeverityWarning, Code: fhir.IssueTooCostly,
				Diagnostics: fmt.Sprintf("_include and _revinclude are limited to %d resources per page; some were left out", e.cfg.MaxIncludes)})
		}
	}
	body, err := e.bundle(req, q, page, included, warnings)
	if err != nil {
		return nil, err
	}
	return &fhirapi.Result{Status: http.StatusOK, Body: body}, nil
}

// restrictions parses the query restrictions of the caller's grant on typ.
// They are parsed strictly: a restriction the server cannot apply must
// not be ignored, which would widen access, so it refuses the search.
func (e *Engine) restrictions(ctx context.Context, typ string, in authz.Interaction) ([]*search.Query, error) {
	raw, err := e.cfg.Restrictor.Restrictions(ctx, typ, in)
	if err != nil || raw == nil {
		return nil, err
	}
	out := make([]*search.Query, 0, len(raw))
	for _, r := range raw {
		q, _, err := search.ParseQuery(typ, r, true)
		if err != nil {
			return nil, fhir.Forbidden("the query restriction %q of the access granted on %s cannot be applied: %s",
				r.Encode(), typ, diagnostics(err))
		}
		e.localReferences(q.Where)
		out = append(out, q)
	}
	return out, nil
}

func diagnostics(err error) string {
	if fe := fhir.AsError(err); fe != nil {
		return fe.Diagnostics
	}
	return err.Error()
}

// allowInclude decides whether included resources of typ may be returned:
// the caller needs read access to the type (authz.Read), and the type's
// query restrictions apply to them too.
func (e *Engine) allowInclude(ctx context.Context, typ string) (bool, []*search.Query, error) {
	err := e.cfg.Authorizer.Authorize(ctx, authz.Request{Interaction: authz.Read, Method: http.MethodGet, Type: typ})
	if err != nil {
		if fe := fhir.AsError(err); fe != nil && fe.Status < 500 {
			return false, nil, nil // refused: leave the type out
		}
		return false, nil, err
	}
	restrict, err := e.restrictions(ctx, typ, authz.Read)
	if err != nil {
		var fe *fhir.Error
		if errors.As(err, &fe) && fe.Status == http.StatusForbidden {
			return false, nil, nil
		}
		return false, nil, err
	}
	return true, restrict, nil
}

// localReferences turns reference values that are absolute URLs under this
// server's base into Type/id, which is how the index stores references to
// local resources (search.html#reference: "the server SHOULD match").
func (e *Engine) localReferences(where []search.Clause) {
	for i := range where {
		c := &where[i]
		if c.Has != nil {
			e.localReferences([]search.Clause{c.Has.Clause})
			continue
		}
		for j := range c.Values {
			e.localRef(&c.Values[j])
			for k := range c.Values[j].Parts {
				e.localRef(&c.Values[j].Parts[k])
			}
		}
	}
}

func (e *Engine) localRef(v *search.Operand) {
	if v.Type != search.TypeReference || e.cfg.Base == "" {
		return
	}
	if rest, ok := strings.CutPrefix(v.Reference.URL, e.cfg.Base+"/"); ok {
		if r, ok := search.ParseReference(rest); ok && r.URL == "" {
			v.Reference = r
		}
	}
}

// Match implements fhirapi.ConditionalMatcher: the criteria of a
// conditional create, update or delete are a search, run inside the write
// transaction (R4 http.html#ccreate). They are parsed strictly: an
// unknown parameter ignored here would widen the match and make the
// server update or delete the wrong resource.
func (e *Engine) Match(ctx context.Context, tx store.Tx, typ string, criteria url.Values) ([]*store.Version, error) {
	q, _, err := search.ParseQuery(typ, criteria, true)
	if err != nil {
		return nil, err
	}
	if len(q.Where) == 0 {
		return nil, fhir.Invalid("conditional criteria %q select no search parameter", criteria.Encode())
	}
	e.localReferences(q.Where)
	return e.cfg.Store.MatchTx(ctx, tx, q, maxConditionalMatches)
}

// maxConditionalMatches is how many matches a conditional interaction
// looks at; more than one already decides it.
const maxConditionalMatches = 100
