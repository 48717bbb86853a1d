package export

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/smart"
)

// writeJSON writes a body with its media type.
func writeJSON(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// writeError answers err as an OperationOutcome (export.html: every error
// of kick-off, status, cancel and file requests carries one). An error
// that is not a *fhir.Error is internal: logged, answered 500 without
// details; on status requests with the transient code, since the job
// itself may be fine (export.html "Error Status": a failure of the status
// request SHOULD use a transient code).
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	fe := asFHIRError(err)
	if fe == nil {
		fe = fhir.Internal(err)
		if r.Method != http.MethodPost {
			fe.Code = fhir.IssueTransient
		}
	}
	if fe.Status >= 500 {
		s.log.ErrorContext(r.Context(), "export request failed", "status", fe.Status, "err", err)
	}
	var re *retryError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(re.after))
	}
	switch fe.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="fhirgate"`)
	case http.StatusTooManyRequests:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(s.cfg.PollInterval)))
		}
	}
	writeJSON(w, fe.Status, fhir.MediaJSON+"; charset=utf-8", fe.Outcome().JSON())
}

// asFHIRError maps errors of the layers below to a *fhir.Error: the OAuth
// errors of bearer authentication become 401 login.
func asFHIRError(err error) *fhir.Error {
	if fe := fhir.AsError(err); fe != nil {
		return fe
	}
	var se *smart.Error
	if errors.As(err, &se) {
		status := se.Status
		if status == 0 {
			status = http.StatusUnauthorized
		}
		code := fhir.IssueLogin
		if status == http.StatusForbidden {
			code = fhir.IssueForbidden
		}
		return &fhir.Error{Status: status, Code: code, Diagnostics: se.Description, Err: err}
	}
	return nil
}
