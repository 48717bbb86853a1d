package export

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// Level is where an export was kicked off (Bulk Data 2.0 export.html
// "Endpoint - System Level Export" and following).
type Level string

// Export levels.
const (
	LevelSystem  Level = "system"
	LevelPatient Level = "patient"
	LevelGroup   Level = "group"
)

// outputFormats are the _outputFormat values of NDJSON, all of which a
// server SHALL accept (export.html#query-parameters).
var outputFormats = []string{fhir.MediaNDJSON, "application/ndjson", "ndjson"}

// knownParams are the kick-off parameters of Bulk Data 2.0; STU3 ones
// (_until, organizeOutputBy, allowPartialManifests) are unsupported here
// and handled like any unknown parameter.
var knownParams = []string{"_outputFormat", "_since", "_type", "_elements", "patient", "_typeFilter", "includeAssociatedData"}

// ignoredParams are general FHIR parameters that do not concern the export.
var ignoredParams = map[string]bool{"_format": true, "_pretty": true}

// maxPatients bounds the patient parameter, each of which the kick-off
// checks against the store.
const maxPatients = 1000

// typeFilter is one _typeFilter query.
type typeFilter struct {
	Type  string
	Query url.Values
	Raw   string
}

// request is a parsed kick-off request, before types are resolved against
// the caller's grant.
type request struct {
	level      Level
	groupID    string
	lenient    bool
	format     string
	since      time.Time
	types      []string // _type; nil when absent
	elements   []string
	patients   []string // ids
	filters    []typeFilter
	associated []string
	issues     []fhir.Issue
}

// warn records a problem accepted under handling=lenient; it ends up in
// the manifest's error file (export.html "error": one OperationOutcome per
// ignored parameter).
func (q *request) warn(code fhir.IssueType, format string, args ...any) {
	q.issues = append(q.issues, fhir.Issue{Severity: fhir.SeverityWarning, Code: code, Diagnostics: fmt.Sprintf(format, args...)})
}

// refuse is a 400 under strict handling and a warning under
// handling=lenient (export.html: a server that cannot support a parameter
// MAY process the request anyway when the client asks for lenient
// handling).
func (q *request) refuse(code fhir.IssueType, format string, args ...any) error {
	if q.lenient {
		q.warn(code, format+"; ignored (Prefer: handling=lenient)", args...)
		return nil
	}
	return fhir.Errorf(http.StatusBadRequest, code, format, args...)
}

// checkHeaders enforces the kick-off headers (export.html#headers):
// Accept must allow application/fhir+json, and Prefer must ask for
// respond-async (both optional in the IG; fhirgate requires them, which
// the IG allows). It returns whether handling=lenient was asked for.
func checkHeaders(r *http.Request) (lenient bool, err error) {
	if !acceptsFHIRJSON(r.Header.Values("Accept")) {
		return false, fhir.Invalid("the kick-off needs Accept: application/fhir+json (got %q)", strings.Join(r.Header.Values("Accept"), ", "))
	}
	async := false
	for _, h := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "respond-async":
				async = true
			case "handling":
				lenient = strings.EqualFold(strings.Trim(strings.TrimSpace(v), `"`), "lenient")
			}
		}
	}
	if !async {
		return false, fhir.Invalid("the kick-off needs Prefer: respond-async: exports always run asynchronously")
	}
	return lenient, nil
}

func acceptsFHIRJSON(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == fhir.MediaJSON && params["q"] != "0" && params["q"] != "0.0" {
				return true
			}
		}
	}
	return false
}

// readParams collects the parameters of a GET (query string) or a POST
// (Parameters body) as name → values; maxBody bounds the body.
func readParams(r *http.Request, maxBody int64) (url.Values, error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r.URL.Query(), nil
	}
	for k := range r.URL.Query() {
		if !ignoredParams[k] {
			return nil, fhir.Invalid("a POST kick-off takes its parameters in the Parameters body, not in the URL (%s)", k)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fhir.Invalid("reading the request body: %v", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fhir.Errorf(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "the Parameters body exceeds %d bytes", maxBody)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return url.Values{}, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != fhir.MediaJSON && mt != fhir.MediaPlainJSON {
		return nil, fhir.Errorf(http.StatusUnsupportedMediaType, fhir.IssueNotSupported,
			"a POST kick-off takes a Parameters resource as application/fhir+json, not %q", r.Header.Get("Content-Type"))
	}
	return parseParameters(body)
}

// parameter is a Parameters.parameter with the value types the Bulk Data
// OperationDefinitions use.
type parameter struct {
	Name   string                     `json:"name"`
	Values map[string]json.RawMessage `json:"-"`
}

func (p *parameter) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if err := json.Unmarshal(m["name"], &p.Name); err != nil {
		return fmt.Errorf("parameter without a name")
	}
	p.Values = map[string]json.RawMessage{}
	for k, v := range m {
		if strings.HasPrefix(k, "value") {
			p.Values[k] = v
		}
	}
	return nil
}

// parseParameters reads a Parameters resource into name → values: the
// string of valueString, valueInstant, valueCode, valueUri, valueDateTime,
// or the reference of valueReference.
func parseParameters(body []byte) (url.Values, error) {
	var ps struct {
		ResourceType string      `json:"resourceType"`
		Parameter    []parameter `json:"parameter"`
	}
	if err := json.Unmarshal(body, &ps); err != nil {
		return nil, fhir.Invalid("the body is not a Parameters resource: %v", err)
	}
	if ps.ResourceType != "Parameters" {
		return nil, fhir.Invalid("the body is a %q, want a Parameters resource", ps.ResourceType)
	}
	out := url.Values{}
	for _, p := range ps.Parameter {
		v, err := parameterValue(p)
		if err != nil {
			return nil, err
		}
		out.Add(p.Name, v)
	}
	return out, nil
}

func parameterValue(p parameter) (string, error) {
	if len(p.Values) != 1 {
		return "", fhir.Invalid("parameter %s must have exactly one value[x]", p.Name)
	}
	for k, raw := range p.Values {
		if k == "valueReference" {
			var ref struct {
				Reference string `json:"reference"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil || ref.Reference == "" {
				return "", fhir.Invalid("parameter %s: valueReference needs a reference", p.Name)
			}
			return ref.Reference, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fhir.Invalid("parameter %s: %s must be a string", p.Name, k)
		}
		return s, nil
	}
	return "", nil
}

// parseRequest validates the parameters of a kick-off at level (groupID
// for Group exports); post says they came in a Parameters body. now
// bounds _since.
func parseRequest(params url.Values, level Level, groupID string, post, lenient bool, now time.Time) (*request, error) {
	q := &request{level: level, groupID: groupID, lenient: lenient, format: fhir.MediaNDJSON}
	if _, ok := params["patient"]; ok && !post {
		// The OperationDefinitions declare patient for POST only: a
		// Reference does not fit a query string.
		return nil, fhir.Invalid("the patient parameter is accepted in a POST Parameters body only")
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names) // deterministic errors and warnings
	for _, name := range names {
		if err := q.param(name, params[name], now); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (q *request) param(name string, values []string, now time.Time) error {
	switch name {
	case "_outputFormat":
		return q.outputFormat(values)
	case "_since":
		return q.sinceParam(values, now)
	case "_type":
		return q.typeParam(values)
	case "_elements":
		return q.elementsParam(values)
	case "patient":
		return q.patientParam(values)
	case "_typeFilter":
		return q.typeFilterParam(values)
	case "includeAssociatedData":
		q.associated = splitList(values)
		return nil
	}
	if ignoredParams[name] {
		return nil
	}
	return q.refuse(fhir.IssueNotSupported, "parameter %s is not supported by this server (supported: %s)", name, strings.Join(knownParams, ", "))
}

// splitList reads a list parameter: repeats count as if comma-joined
// (export.html: "the server SHALL treat repeats as if they were
// comma-joined").
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func (q *request) outputFormat(values []string) error {
	if len(values) != 1 {
		return fhir.Invalid("_outputFormat may be given once")
	}
	if !slices.Contains(outputFormats, strings.TrimSpace(values[0])) {
		return fhir.NotSupported("_outputFormat %q is not supported: use %s", values[0], strings.Join(outputFormats, ", "))
	}
	return nil
}

func (q *request) sinceParam(values []string, now time.Time) error {
	if len(values) != 1 {
		return fhir.Invalid("_since may be given once")
	}
	t, err := parseInstant(values[0])
	if err != nil {
		return fhir.Invalid("_since %q is not a FHIR instant such as 2024-01-31T12:00:00Z: %v", values[0], err)
	}
	if t.After(now) {
		return fhir.Invalid("_since %s is in the future", values[0])
	}
	q.since = t
	return nil
}

// instantRE is the R4 instant grammar (datatypes.html#instant): a full
// date and time with seconds and a time zone.
var instantRE = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)

func parseInstant(s string) (time.Time, error) {
	if !instantRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("want YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)")
	}
	return fhir.ParseInstant(s)
}

func (q *request) typeParam(values []string) error {
	q.types = []string{}
	for _, t := range splitList(values) {
		if !fhir.IsResourceType(t) {
			if err := q.refuse(fhir.IssueNotSupported, "_type %s is not a FHIR R4 resource type", t); err != nil {
				return err
			}
			continue
		}
		q.types = append(q.types, t)
	}
	return nil
}

// elementRE is a root element name; _elements takes "element" or
// "Type.element" (export.html#query-parameters: root elements only).
var elementRE = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)

func (q *request) elementsParam(values []string) error {
	for _, e := range splitList(values) {
		typ, name, prefixed := strings.Cut(e, ".")
		if !prefixed {
			typ, name = "", e
		}
		if (prefixed && !fhir.IsResourceType(typ)) || !elementRE.MatchString(name) {
			return fhir.Invalid("_elements %q: want element or Type.element naming a root element, e.g. Patient.name", e)
		}
		q.elements = append(q.elements, e)
	}
	return nil
}

func (q *request) patientParam(values []string) error {
	if q.level == LevelSystem {
		return fhir.Invalid("the patient parameter applies to Patient and Group exports only, not to /$export")
	}
	for _, ref := range values {
		id, ok := strings.CutPrefix(ref, "Patient/")
		if !ok || !fhir.ValidID(id) {
			return fhir.Invalid("patient %q: want a reference Patient/[id]", ref)
		}
		if !slices.Contains(q.patients, id) {
			q.patients = append(q.patients, id)
		}
	}
	if len(q.patients) > maxPatients {
		return fhir.Errorf(http.StatusBadRequest, fhir.IssueTooCostly, "at most %d patient parameters, got %d: export a Group instead", maxPatients, len(q.patients))
	}
	return nil
}

// filterStart finds where a comma-joined _typeFilter value starts another
// query: a resource type followed by "?". A comma inside a query's own
// values is never followed by that.
var filterStart = regexp.MustCompile(`,[A-Z][A-Za-z]+\?`)

// resultParams are search result parameters, which _typeFilter SHALL NOT
// use (export.html "_typeFilter").
var resultParams = []string{"_include", "_revinclude", "_sort", "_count", "_elements", "_summary", "_total", "_contained", "_containedType"}

func (q *request) typeFilterParam(values []string) error {
	for _, v := range values {
		for _, raw := range splitFilters(v) {
			f, err := parseTypeFilter(raw)
			if err != nil {
				return err
			}
			q.filters = append(q.filters, f)
		}
	}
	return nil
}

func splitFilters(v string) []string {
	var out []string
	for {
		loc := filterStart.FindStringIndex(v)
		if loc == nil {
			return append(out, v)
		}
		out = append(out, v[:loc[0]])
		v = v[loc[0]+1:]
	}
}

func parseTypeFilter(raw string) (typeFilter, error) {
	typ, query, ok := strings.Cut(strings.TrimSpace(raw), "?")
	if !ok || !fhir.IsResourceType(typ) || query == "" {
		return typeFilter{}, fhir.Invalid("_typeFilter %q: want [Type]?[search parameters], e.g. Observation?category=laboratory", raw)
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return typeFilter{}, fhir.Invalid("_typeFilter %q: %v", raw, err)
	}
	for k := range vals {
		base, _, _ := strings.Cut(k, ":")
		if slices.Contains(resultParams, base) {
			return typeFilter{}, fhir.Invalid("_typeFilter %q: the result parameter %s is not allowed in a _typeFilter", raw, base)
		}
	}
	return typeFilter{Type: typ, Query: vals, Raw: raw}, nil
}
