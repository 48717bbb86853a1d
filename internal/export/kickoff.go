package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/store"
)

// typeInteraction is the interaction a client must be allowed on a type to
// export it: searching it (SMART "s"; v1 read scopes include it), since an
// export returns every resource of the type, as a search would.
const typeInteraction = authz.SearchType

// kickoffHandler serves the kick-off of one level (export.html
// "Bulk Data Kick-off Request"). It validates, decides the types within
// the caller's grant, stores the job and answers 202: the work happens in
// the runner.
func (s *Service) kickoffHandler(level Level) func(w http.ResponseWriter, r *http.Request, typ, id string) {
	return func(w http.ResponseWriter, r *http.Request, _, id string) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			s.writeError(w, r, fhir.Errorf(http.StatusMethodNotAllowed, fhir.IssueNotSupported,
				"the $export kick-off takes GET or POST, not %s", r.Method))
			return
		}
		statusURL, err := s.kickoff(r, level, id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Location", statusURL)
		o := fhir.NewOutcome(fhir.SeverityInformation, fhir.IssueInformational,
			"export accepted; poll "+statusURL+" for its status")
		writeJSON(w, http.StatusAccepted, fhir.MediaJSON+"; charset=utf-8", o.JSON())
	}
}

// kickoff runs the checks of a kick-off and stores the job; it returns the
// status URL.
func (s *Service) kickoff(r *http.Request, level Level, groupID string) (string, error) {
	ctx := r.Context()
	p := authz.FromContext(ctx)
	opType := map[Level]string{LevelPatient: "Patient", LevelGroup: "Group"}[level]
	if err := s.authz.Authorize(ctx, authz.Request{Interaction: authz.Operation, Operation: "$export", Method: r.Method,
		Type: opType, ID: groupID, Query: r.URL.Query()}); err != nil {
		return "", err
	}
	if p == nil { // an authorizer that lets anonymous callers through
		return "", fhir.Unauthorized("authentication required: the export needs a client to own it")
	}
	lenient, err := checkHeaders(r)
	if err != nil {
		return "", err
	}
	raw, err := readParams(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return "", err
	}
	q, err := parseRequest(raw, level, groupID, r.Method == http.MethodPost, lenient, s.now())
	if err != nil {
		return "", err
	}
	params, err := s.resolve(ctx, q)
	if err != nil {
		return "", err
	}
	return s.createJob(ctx, r, p.ClientID, params)
}

// resolve turns a parsed request into the job's parameters: the group and
// patients checked, the types decided against the caller's grant, filters
// compiled once to refuse bad ones now rather than in the worker.
func (s *Service) resolve(ctx context.Context, q *request) (*Params, error) {
	params := &Params{Level: q.level, GroupID: q.groupID, Elements: q.elements, Associated: q.associated}
	if !q.since.IsZero() {
		params.Since = q.since.UnixMicro()
	}
	members, err := s.checkGroup(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := s.checkPatients(ctx, q, members); err != nil {
		return nil, err
	}
	params.Patients = q.patients
	if params.Types, err = s.exportTypes(ctx, q); err != nil {
		return nil, err
	}
	if err := s.resolveFilters(ctx, q, params); err != nil {
		return nil, err
	}
	if len(params.Types) == 0 {
		return nil, fhir.Forbidden("nothing to export: no requested resource type may be exported with this client's permissions")
	}
	s.noteAssociated(q)
	params.Issues = q.issues
	return params, nil
}

// checkGroup, for a Group export, needs read access to the Group (Bulk
// Data 3.0 "Privacy and Security": servers SHOULD require it) and the
// Group itself; it returns the current members.
func (s *Service) checkGroup(ctx context.Context, q *request) (map[string]bool, error) {
	if q.level != LevelGroup {
		return nil, nil
	}
	if err := s.authz.Authorize(ctx, authz.Request{Interaction: authz.Read, Method: http.MethodGet, Type: "Group", ID: q.groupID}); err != nil {
		return nil, err
	}
	if !fhir.ValidID(q.groupID) {
		return nil, fhir.Invalid("invalid Group id %q", q.groupID)
	}
	v, err := s.st.Read(ctx, "Group", q.groupID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
		return nil, fhir.NotFound("Group/%s is not known", q.groupID)
	case err != nil:
		return nil, err
	}
	return s.compartmentOf(nil).groupMembers(v.Body)
}

func (s *Service) compartmentOf(patients map[string]bool) *compartment {
	return &compartment{fhirBase: s.cfg.BaseURL + "/fhir", patients: patients}
}

// checkPatients refuses unknown patients and, for a Group, non-members
// (export.html "patient": the server SHOULD return an error).
func (s *Service) checkPatients(ctx context.Context, q *request, members map[string]bool) error {
	var kept []string
	for _, id := range q.patients {
		_, err := s.st.Read(ctx, "Patient", id)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
			if err := q.refuse(fhir.IssueNotFound, "patient Patient/%s is not known", id); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		case members != nil && !members[id]:
			if err := q.refuse(fhir.IssueNotFound, "patient Patient/%s is not a member of Group/%s", id, q.groupID); err != nil {
				return err
			}
			continue
		}
		kept = append(kept, id)
	}
	if len(q.patients) > 0 && len(kept) == 0 {
		return fhir.Invalid("none of the patient parameters names a patient that can be exported")
	}
	q.patients = kept
	return nil
}

// levelTypes are the types an export of the level can hold: every R4 type
// at system level, the Patient compartment's (with Patient) otherwise.
func levelTypes(level Level) []string {
	if level == LevelSystem {
		return fhir.ResourceTypes()
	}
	return search.PatientCompartmentTypes()
}

// exportTypes decides the types: with _type, each must suit the level and
// be permitted (403 otherwise: export.html asks to limit data to what the
// client may see); without, every permitted type of the level, leaving
// out silently what the grant does not cover.
func (s *Service) exportTypes(ctx context.Context, q *request) ([]string, error) {
	all := levelTypes(q.level)
	if q.types == nil {
		var out []string
		for _, t := range all {
			if s.mayExport(ctx, t) == nil {
				out = append(out, t)
			}
		}
		return out, nil
	}
	var out []string
	for _, t := range q.types {
		if !slices.Contains(all, t) {
			if err := q.refuse(fhir.IssueNotSupported, "_type %s: resources of this type are not in the Patient compartment, which a %s export returns", t, q.level); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.mayExport(ctx, t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *Service) mayExport(ctx context.Context, typ string) error {
	return s.authz.Authorize(ctx, authz.Request{Interaction: typeInteraction, Method: http.MethodGet, Type: typ})
}

// resolveFilters checks _typeFilter and the grant's query restrictions.
func (s *Service) resolveFilters(ctx context.Context, q *request, params *Params) error {
	for _, f := range q.filters {
		switch {
		case !slices.Contains(params.Types, f.Type):
			if err := q.refuse(fhir.IssueNotSupported, "_typeFilter %s: %s is not among the exported types", f.Raw, f.Type); err != nil {
				return err
			}
		case s.cfg.Matcher == nil:
			if err := q.refuse(fhir.IssueNotSupported, "_typeFilter is not supported by this server yet (%s)", f.Raw); err != nil {
				return err
			}
		default:
			if params.TypeFilters == nil {
				params.TypeFilters = map[string][]string{}
			}
			params.TypeFilters[f.Type] = append(params.TypeFilters[f.Type], f.Query.Encode())
		}
	}
	for t, raws := range params.TypeFilters {
		if err := s.compile(ctx, t, raws); err != nil {
			return err
		}
	}
	return s.resolveScopes(ctx, q, params)
}

func (s *Service) compile(ctx context.Context, typ string, raws []string) error {
	qs, err := queries(raws)
	if err != nil {
		return fhir.Invalid("filter on %s: %v", typ, err)
	}
	_, err = s.cfg.Matcher.Compile(ctx, typ, qs)
	return err
}

// resolveScopes records the query restrictions of the grant per type. A
// restricted type cannot be exported without a matcher to enforce the
// restriction: refused when asked for by _type, else left out with a note.
func (s *Service) resolveScopes(ctx context.Context, q *request, params *Params) error {
	kept := params.Types[:0:0]
	for _, t := range params.Types {
		fs, err := s.cfg.Scopes.Restrictions(ctx, t, typeInteraction)
		if err != nil {
			return err
		}
		if len(fs) == 0 {
			kept = append(kept, t)
			continue
		}
		if s.cfg.Matcher == nil {
			if q.types != nil {
				return fhir.Forbidden("the grant on %s is restricted by a query, which this server cannot apply to an export yet", t)
			}
			q.issues = append(q.issues, fhir.Issue{Severity: fhir.SeverityInformation, Code: fhir.IssueForbidden,
				Diagnostics: fmt.Sprintf("%s left out: the grant on it is restricted by a query, which this server cannot apply to an export yet", t)})
			continue
		}
		raws := make([]string, len(fs))
		for i, f := range fs {
			raws[i] = f.Encode()
		}
		if err := s.compile(ctx, t, raws); err != nil {
			return err
		}
		if params.ScopeFilters == nil {
			params.ScopeFilters = map[string][]string{}
		}
		params.ScopeFilters[t] = raws
		kept = append(kept, t)
	}
	params.Types = kept
	return nil
}

// noteAssociated answers includeAssociatedData (export.html): fhirgate
// supports none of its values, so it exports Provenance like any other
// type, which is what the IG asks of a server without support: all
// Provenance at system level, those in the Patient compartment otherwise.
func (s *Service) noteAssociated(q *request) {
	if len(q.associated) == 0 {
		return
	}
	q.issues = append(q.issues, fhir.Issue{Severity: fhir.SeverityInformation, Code: fhir.IssueNotSupported,
		Diagnostics: fmt.Sprintf("includeAssociatedData=%s is not supported: Provenance resources are exported like any other type "+
			"(every Provenance at system level, those in the Patient compartment at Patient and Group level) unless _type leaves them out",
			strings.Join(q.associated, ","))})
}

// createJob stores the job with its plan task. A client that runs too
// many exports gets 429 (export.html: to stop a client starting a new
// export before the current one finishes).
func (s *Service) createJob(ctx context.Context, r *http.Request, owner string, params *Params) (string, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return "", err
	}
	job := &store.ExportJob{ID: randomID(), Owner: owner, Request: s.requestURL(r), Params: b}
	err = s.st.CreateExportJob(ctx, job, []store.ExportTask{{Seq: 0, Kind: kindPlan, Type: string(params.Level)}}, s.cfg.MaxPerClient)
	if errors.Is(err, store.ErrExportLimit) {
		e := fhir.TooManyRequests("client %q already runs %d exports, the most allowed at once: wait for one to finish or cancel one", owner, s.cfg.MaxPerClient)
		return "", &retryError{fe: e, after: retryAfterSeconds(s.cfg.PollInterval) * 5}
	}
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "export started", "job", job.ID, "level", params.Level, "types", len(params.Types))
	s.notify()
	return s.statusURL(job.ID), nil
}

// requestURL is the manifest's request: the kick-off URL, without the
// parameters for a POST (export.html "request").
func (s *Service) requestURL(r *http.Request) string {
	u := s.cfg.BaseURL + r.URL.EscapedPath()
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// retryError is a *fhir.Error answered with a Retry-After header.
type retryError struct {
	fe    *fhir.Error
	after int
}

func (e *retryError) Error() string { return e.fe.Error() }
func (e *retryError) Unwrap() error { return e.fe }

// retryAfterSeconds renders d as Retry-After seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}
