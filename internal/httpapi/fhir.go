package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
)

// fhirHandler serves everything under /fhir. The FHIR URL space does not
// fit http.ServeMux patterns (Patient/{id}/{type} and {type}/{id}/_history
// overlap), so it is dispatched by segment here, which also lets every
// unknown route and method answer with an OperationOutcome.
func (s *Server) fhirHandler(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/fhir"), "/")
	var seg []string
	if rest != "" {
		seg = strings.Split(rest, "/")
	}
	if len(seg) == 2 && seg[0] == ".well-known" && seg[1] == "smart-configuration" && s.cfg.Auth != nil {
		// JSON whatever Accept says (SMART 2.2 conformance.html).
		if allowMethods(w, r, http.MethodGet) {
			s.smartConfiguration(w, r)
		}
		return
	}
	if _, err := responseType(r); err != nil {
		setRoute(r, "/fhir")
		s.writeError(w, r, err)
		return
	}
	if len(seg) == 1 && seg[0] == "metadata" {
		setRoute(r, "/fhir/metadata")
		if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		s.writeResult(w, r, s.fhir.Metadata(s.cfg.Started))
		return
	}
	authed, err := s.Authenticate(r)
	if err != nil {
		setRoute(r, "/fhir")
		s.writeError(w, r, err)
		return
	}
	r = authed
	if err := s.dispatchFHIR(w, r, seg); err != nil {
		s.writeError(w, r, err)
	}
}

// dispatchFHIR routes by path segments and method; each branch sets the
// route template for metrics.
func (s *Server) dispatchFHIR(w http.ResponseWriter, r *http.Request, seg []string) error {
	route := func(t string, methods ...string) bool {
		setRoute(r, t)
		return allowMethods(w, r, methods...)
	}
	if op := s.findOperation(seg); op != nil {
		setRoute(r, op.route())
		if op.RootOnly {
			if err := s.admitRoot(authz.FromContext(r.Context())); err != nil {
				return err
			}
		}
		op.Handler(w, r, op.typ, op.id)
		return nil
	}
	switch {
	case len(seg) == 0:
		if !route("/fhir", http.MethodPost) {
			return nil
		}
		body, err := s.readBody(r)
		if err != nil {
			return err
		}
		res, err := s.fhir.Bundle(r.Context(), body, fhirapi.BundleOptions{Representation: parsePrefer(r).ret == "representation"})
		return s.finish(w, r, res, err)
	case len(seg) == 1 && seg[0] == "_history":
		if !route("/fhir/_history", http.MethodGet) {
			return nil
		}
		res, err := s.fhir.History(r.Context(), "", "", r.URL.Query())
		return s.finish(w, r, res, err)
	case len(seg) == 1:
		return s.typeLevel(w, r, seg[0], route)
	case len(seg) == 2 && seg[1] == "_history":
		if !route("/fhir/{type}/_history", http.MethodGet) {
			return nil
		}
		res, err := s.fhir.History(r.Context(), seg[0], "", r.URL.Query())
		return s.finish(w, r, res, err)
	case len(seg) == 2 && seg[1] == "_search":
		if !route("/fhir/{type}/_search", http.MethodPost) {
			return nil
		}
		return s.searchPost(w, r, seg[0])
	case len(seg) == 2:
		return s.instanceLevel(w, r, seg[0], seg[1], route)
	case len(seg) == 3 && seg[2] == "_history":
		if !route("/fhir/{type}/{id}/_history", http.MethodGet) {
			return nil
		}
		res, err := s.fhir.History(r.Context(), seg[0], seg[1], r.URL.Query())
		return s.finish(w, r, res, err)
	case len(seg) == 3:
		if !route("/fhir/{type}/{id}/{compartment-type}", http.MethodGet) {
			return nil
		}
		res, err := s.fhir.SearchCompartment(r.Context(), seg[0], seg[1], seg[2], r.URL.Query(), parsePrefer(r).handling == "strict")
		return s.finish(w, r, res, err)
	case len(seg) == 4 && seg[2] == "_history":
		if !route("/fhir/{type}/{id}/_history/{vid}", http.MethodGet, http.MethodHead) {
			return nil
		}
		res, err := s.fhir.VRead(r.Context(), seg[0], seg[1], seg[3])
		return s.finish(w, r, res, err)
	}
	setRoute(r, "/fhir")
	return fhir.NotFound("no FHIR interaction at %s", r.URL.Path)
}

func (s *Server) typeLevel(w http.ResponseWriter, r *http.Request, typ string, route func(string, ...string) bool) error {
	if !route("/fhir/{type}", http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete) {
		return nil
	}
	switch r.Method {
	case http.MethodPut: // conditional update (R4 http.html#cond-update)
		if err := checkContentType(r); err != nil {
			return err
		}
		body, err := s.readBody(r)
		if err != nil {
			return err
		}
		res, err := s.fhir.UpdateConditional(r.Context(), typ, r.URL.Query(), body, r.Header.Get("If-Match"))
		return s.finish(w, r, res, err)
	case http.MethodDelete: // conditional delete (R4 http.html#cond-delete)
		res, err := s.fhir.DeleteConditional(r.Context(), typ, r.URL.Query())
		return s.finish(w, r, res, err)
	}
	if r.Method == http.MethodPost {
		if err := checkContentType(r); err != nil {
			return err
		}
		body, err := s.readBody(r)
		if err != nil {
			return err
		}
		res, err := s.fhir.Create(r.Context(), typ, body, r.Header.Get("If-None-Exist"))
		return s.finish(w, r, res, err)
	}
	res, err := s.fhir.SearchType(r.Context(), typ, r.URL.Query(), parsePrefer(r).handling == "strict")
	return s.finish(w, r, res, err)
}

func (s *Server) instanceLevel(w http.ResponseWriter, r *http.Request, typ, id string, route func(string, ...string) bool) error {
	if !route("/fhir/{type}/{id}", http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete) {
		return nil
	}
	switch r.Method {
	case http.MethodPut:
		if err := checkContentType(r); err != nil {
			return err
		}
		body, err := s.readBody(r)
		if err != nil {
			return err
		}
		res, err := s.fhir.Update(r.Context(), typ, id, body, r.Header.Get("If-Match"))
		return s.finish(w, r, res, err)
	case http.MethodDelete:
		res, err := s.fhir.Delete(r.Context(), typ, id, r.Header.Get("If-Match"))
		if err == nil && parsePrefer(r).ret == "OperationOutcome" {
			o := fhir.NewOutcome(fhir.SeverityInformation, fhir.IssueInformational, typ+"/"+id+" is deleted")
			writeBody(w, r, http.StatusOK, o.JSON())
			return nil
		}
		return s.finish(w, r, res, err)
	}
	res, err := s.fhir.Read(r.Context(), typ, id)
	if err == nil && res.Version != nil && notModified(r, fhirapi.ETag(res.Version.VersionID)) {
		w.Header().Set("ETag", fhirapi.ETag(res.Version.VersionID))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return s.finish(w, r, res, err)
}

// notModified implements If-None-Match on reads (R4 http.html#cread).
func notModified(r *http.Request, etag string) bool {
	for _, v := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		v = strings.TrimSpace(v)
		if v == etag || v == "*" || "W/"+v == etag {
			return true
		}
	}
	return false
}

// searchPost runs a search whose parameters come in a form body (R4
// http.html#search: POST [type]/_search), merged with those of the URL.
func (s *Server) searchPost(w http.ResponseWriter, r *http.Request, typ string) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != fhir.MediaFormURL {
		return fhir.Errorf(http.StatusUnsupportedMediaType, fhir.IssueNotSupported,
			"POST %s/_search takes application/x-www-form-urlencoded parameters", typ)
	}
	body, err := s.readBody(r)
	if err != nil {
		return err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fhir.Invalid("malformed form body: %v", err)
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	res, err := s.fhir.SearchType(r.Context(), typ, form, parsePrefer(r).handling == "strict")
	return s.finish(w, r, res, err)
}

// finish renders a result or an error. A 410 still carries the ETag of the
// deletion version.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, res *fhirapi.Result, err error) error {
	if err != nil {
		if res != nil && res.Version != nil {
			w.Header().Set("ETag", fhirapi.ETag(res.Version.VersionID))
		}
		return err
	}
	s.writeResult(w, r, res)
	return nil
}

func (s *Server) readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes))
}

// allowMethods answers 405 with Allow when r's method is not listed.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeOutcome(w, r, fhir.Errorf(http.StatusMethodNotAllowed, fhir.IssueNotSupported,
		"%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(methods, ", ")))
	return false
}
