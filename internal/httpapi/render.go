package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/smart"
)

// responseType picks the media type of a FHIR response from _format, then
// Accept (R4 http.html#mime). fhirgate speaks JSON only: a request for XML
// or anything else it cannot produce gets 406.
func responseType(r *http.Request) (string, error) {
	if f := r.URL.Query().Get("_format"); f != "" {
		switch strings.ToLower(strings.TrimSpace(strings.Split(f, ";")[0])) {
		case "json", fhir.MediaJSON:
			return fhir.MediaJSON, nil
		case fhir.MediaPlainJSON:
			return fhir.MediaPlainJSON, nil
		}
		return "", fhir.Errorf(http.StatusNotAcceptable, fhir.IssueNotSupported,
			"_format=%s is not supported: fhirgate answers in JSON (_format=json)", f)
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return fhir.MediaJSON, nil
	}
	plain := false
	for _, part := range strings.Split(accept, ",") {
		mt := strings.ToLower(strings.TrimSpace(strings.Split(part, ";")[0]))
		switch mt {
		case fhir.MediaJSON, "*/*", "application/*", "", fhir.MediaNDJSON:
			return fhir.MediaJSON, nil
		case fhir.MediaPlainJSON:
			plain = true
		}
	}
	if plain {
		return fhir.MediaPlainJSON, nil
	}
	return "", fhir.Errorf(http.StatusNotAcceptable, fhir.IssueNotSupported,
		"Accept: %s cannot be served: fhirgate answers in application/fhir+json or application/json", accept)
}

// checkContentType accepts FHIR JSON request bodies (R4 http.html#mime).
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == fhir.MediaJSON || mt == fhir.MediaPlainJSON) {
		return nil
	}
	return fhir.Errorf(http.StatusUnsupportedMediaType, fhir.IssueNotSupported,
		"Content-Type %q is not supported: send application/fhir+json", ct)
}

// prefer holds the parts of the Prefer header (RFC 7240) fhirgate honours.
type prefer struct {
	ret      string // minimal, representation, OperationOutcome
	handling string // strict, lenient
	async    bool
}

func parsePrefer(r *http.Request) prefer {
	var p prefer
	for _, h := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "return":
				p.ret = v
			case "handling":
				p.handling = strings.ToLower(v)
			case "respond-async":
				p.async = true
			}
		}
	}
	return p
}

func pretty(r *http.Request) bool {
	v := r.URL.Query().Get("_pretty")
	return v == "true" || v == "1"
}

// writeBody writes a FHIR JSON body, indented under _pretty=true.
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	ct, err := responseType(r)
	if err != nil {
		ct = fhir.MediaJSON
	}
	if pretty(r) {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			body = buf.Bytes()
		}
	}
	w.Header().Set("Content-Type", ct+"; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// writeResult renders a fhirapi.Result: headers from the version, then the
// body that Prefer: return asks for.
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, res *fhirapi.Result) {
	h := w.Header()
	if v := res.Version; v != nil {
		h.Set("ETag", fhirapi.ETag(v.VersionID))
		h.Set("Last-Modified", v.LastUpdated.UTC().Format(http.TimeFormat))
	}
	if res.Location != "" {
		h.Set("Location", res.Location)
		h.Set("Content-Location", res.Location)
	}
	switch {
	case res.Body != nil:
		writeBody(w, r, res.Status, res.Body)
	case res.Version == nil || res.Version.Deleted || res.Status == http.StatusNoContent:
		w.WriteHeader(res.Status)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		writeBody(w, r, res.Status, res.Version.Body)
	default:
		s.writeWriteResult(w, r, res)
	}
}

// writeWriteResult answers a create or update per Prefer: return (R4
// http.html#ops): the resource (default), nothing, or an OperationOutcome.
func (s *Server) writeWriteResult(w http.ResponseWriter, r *http.Request, res *fhirapi.Result) {
	switch parsePrefer(r).ret {
	case "minimal":
		w.WriteHeader(res.Status)
	case "OperationOutcome":
		v := res.Version
		o := fhir.NewOutcome(fhir.SeverityInformation, fhir.IssueInformational,
			strconv.Itoa(res.Status)+" "+http.StatusText(res.Status)+": "+v.Type+"/"+v.ID+" version "+strconv.FormatInt(v.VersionID, 10))
		writeBody(w, r, res.Status, o.JSON())
	default:
		writeBody(w, r, res.Status, res.Version.Body)
	}
}

// writeError renders err as an OperationOutcome. Errors that are not a
// *fhir.Error are internal: logged with the request id, answered 500
// without details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	fe := fhir.AsError(err)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		fe = fhir.Errorf(http.StatusRequestEntityTooLarge, fhir.IssueTooLong,
			"the request body exceeds the limit of %d bytes", mbe.Limit)
	case fe == nil:
		fe = fhir.Internal(err)
	}
	if fe.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "status", fe.Status, "err", err)
	}
	setChallenge(w, err)
	writeOutcome(w, r, fe)
}

func writeOutcome(w http.ResponseWriter, r *http.Request, fe *fhir.Error) {
	if fe.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fhirgate"`)
	}
	if fe.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeBody(w, r, fe.Status, fe.Outcome().JSON())
}

// writeOAuthError renders an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, e *smart.Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	w.Write(e.JSON())
}
