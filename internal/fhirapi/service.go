// Package fhirapi is the FHIR R4 RESTful API without HTTP: each interaction
// of R4 http.html is a method that takes typed input and returns a Result or
// a *fhir.Error. The HTTP layer (httpapi) only translates requests and
// renders results, so batch and transaction entries run through exactly the
// same code, and the same authorization check, as single requests.
package fhirapi

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Config configures a Service.
type Config struct {
	Store store.Store
	// BaseURL is the public base URL of the server without a trailing
	// slash; the FHIR base is BaseURL + "/fhir".
	BaseURL string
	// Authorizer decides every interaction (default authz.RootOnly).
	Authorizer authz.Authorizer
	// Logger receives operational messages (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// DefaultCount and MaxCount bound page sizes of history (and search).
	DefaultCount, MaxCount int
	// MaxBundleEntries caps the entries of one batch or transaction.
	MaxBundleEntries int
	// Restrictor gives the query restrictions of the caller's grant
	// (query-restricted SMART scopes), which reads and history apply
	// through Matcher (restrict.go); nil: no restrictions.
	Restrictor authz.Restrictor
	// Matcher decides whether a resource matches a restriction; without
	// one, restricted resources are refused.
	Matcher ResourceMatcher
}

// Service implements the FHIR interactions.
type Service struct {
	store    store.Store
	base     string // FHIR base URL, e.g. http://host:8080/fhir
	authz    authz.Authorizer
	log      *slog.Logger
	now      func() time.Time
	defCount int
	maxCount int
	maxEntry int
	// conditional resolves search criteria of conditional interactions; it
	// starts with the built-in _id/identifier matcher.
	conditional ConditionalMatcher
	// search runs searches; nil until a search engine is attached.
	search Searcher
	// root is the server's base URL (the FHIR base without /fhir).
	root string
	// capHooks let other modules (search, export) describe themselves in
	// the CapabilityStatement.
	capHooks []func(*CapabilityStatement)
	// restrict and rmatch apply query-restricted scopes to reads.
	restrict authz.Restrictor
	rmatch   ResourceMatcher
}

// SearchRequest is one search: type-level, or within a compartment.
type SearchRequest struct {
	Type   string
	Params url.Values
	// Strict refuses unknown parameters (Prefer: handling=strict) instead
	// of ignoring and reporting them.
	Strict bool
	// CompartmentType and CompartmentID restrict the search to a
	// compartment, e.g. Patient/123 (R4 compartmentdefinition.html).
	CompartmentType, CompartmentID string
}

// Searcher runs FHIR searches (provided by the search engine).
type Searcher interface {
	Search(ctx context.Context, req SearchRequest) (*Result, error)
}

// SetSearcher attaches the search engine.
func (s *Service) SetSearcher(se Searcher) { s.search = se }

// AddCapabilities registers a hook that adds to the CapabilityStatement.
func (s *Service) AddCapabilities(hook func(*CapabilityStatement)) {
	s.capHooks = append(s.capHooks, hook)
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{
		store:    cfg.Store,
		root:     strings.TrimSuffix(cfg.BaseURL, "/"),
		base:     strings.TrimSuffix(cfg.BaseURL, "/") + "/fhir",
		authz:    cfg.Authorizer,
		log:      cfg.Logger,
		now:      cfg.Now,
		defCount: cfg.DefaultCount,
		maxCount: cfg.MaxCount,
		maxEntry: cfg.MaxBundleEntries,
		restrict: cfg.Restrictor,
		rmatch:   cfg.Matcher,
	}
	if s.authz == nil {
		s.authz = authz.RootOnly
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.defCount <= 0 {
		s.defCount = 50
	}
	if s.maxCount <= 0 {
		s.maxCount = 1000
	}
	if s.maxEntry <= 0 {
		s.maxEntry = 10000
	}
	s.conditional = basicMatcher{}
	return s
}

// SetConditionalMatcher replaces the matcher of conditional interactions
// (the search engine provides a complete one).
func (s *Service) SetConditionalMatcher(m ConditionalMatcher) { s.conditional = m }

// Base returns the FHIR base URL.
func (s *Service) Base() string { return s.base }

// Result is the outcome of an interaction, for the transport to render.
type Result struct {
	// Status is the HTTP status.
	Status int
	// Version is the resource version read or written, if any: it gives
	// the body, ETag and Last-Modified.
	Version *store.Version
	// Location is the absolute URL of a created or updated version.
	Location string
	// Body is a body that is not a stored version (Bundle,
	// CapabilityStatement, OperationOutcome).
	Body []byte
	// Outcome describes a successful write for Prefer: return=OperationOutcome.
	Outcome *fhir.OperationOutcome
}

func (s *Service) authorize(ctx context.Context, req authz.Request) error {
	return s.authz.Authorize(ctx, req)
}

// checkType refuses unknown resource types with 404, as R4 http.html asks
// for an unsupported type.
func checkType(typ string) error {
	if !fhir.IsResourceType(typ) {
		return fhir.NotFound("unknown resource type %q: fhirgate serves the resource types of FHIR R4 (4.0.1)", typ)
	}
	return nil
}

func checkID(id string) error {
	if !fhir.ValidID(id) {
		return fhir.Invalid("invalid id %q: a FHIR id is 1 to 64 characters from A-Z a-z 0-9 - .", id)
	}
	return nil
}

// versionURL is the absolute URL of a version: the Location of writes.
func (s *Service) versionURL(v *store.Version) string {
	return s.base + "/" + v.Type + "/" + v.ID + "/_history/" + itoa(v.VersionID)
}

func (s *Service) resourceURL(typ, id string) string {
	return s.base + "/" + typ + "/" + id
}

func (s *Service) pageCount(q url.Values) (int, error) {
	c := q.Get("_count")
	if c == "" {
		return s.defCount, nil
	}
	n, err := atoi(c)
	if err != nil || n < 0 {
		return 0, fhir.Invalid("_count=%q: want a non-negative integer", c)
	}
	return min(n, s.maxCount), nil
}
