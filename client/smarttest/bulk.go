package smarttest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// job is one export.
type job struct {
	id       string
	types    []string
	request  string
	started  time.Time
	polls    int
	deleted  bool
	manifest []byte
	files    []*exportFile
}

// exportFile is one NDJSON file of a job, plain and gzipped.
type exportFile struct {
	typ     string
	plain   []byte
	gz      []byte
	sig     string
	dropped bool
}

// outputFormats are the _outputFormat values a server SHALL accept for
// NDJSON (Bulk Data 2.0 export.html#query-parameters).
var outputFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// kickoff implements the kick-off request of every level.
func (s *Server) kickoff(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	k := Kickoff{Method: r.Method, Path: r.URL.Path, Prefer: r.Header.Get("Prefer"), Accept: r.Header.Get("Accept")}
	params, ferr := readParams(r)
	k.Params = params
	s.mu.Lock()
	s.stats.kickoffs = append(s.stats.kickoffs, k)
	throttle := s.b.KickoffThrottles > 0
	if throttle {
		s.b.KickoffThrottles--
	}
	retryAfter := s.b.KickoffRetryAfter
	s.mu.Unlock()
	if ferr != nil {
		writeOutcome(w, ferr)
		return
	}
	if throttle {
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		writeOutcome(w, fhir.TooManyRequests("an export of this client is already running"))
		return
	}
	if ferr := s.checkKickoff(r, k); ferr != nil {
		writeOutcome(w, ferr)
		return
	}
	j := &job{id: randomID(), types: params["_type"], request: s.URL + r.URL.RequestURI(), started: s.now()}
	s.mu.Lock()
	s.jobs[j.id] = j
	s.mu.Unlock()
	w.Header().Set("Content-Location", s.URL+"/bulkstatus/"+j.id)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) checkKickoff(r *http.Request, k Kickoff) *fhir.Error {
	if !strings.Contains(k.Prefer, "respond-async") {
		return fhir.Invalid("Prefer: respond-async is required")
	}
	if k.Accept != fhir.MediaJSON {
		return fhir.Invalid("Accept must be application/fhir+json")
	}
	if id := r.PathValue("id"); id != "" {
		s.mu.Lock()
		known := s.groups[id]
		s.mu.Unlock()
		if !known {
			return fhir.NotFound("Group/%s is not known", id)
		}
	}
	if f := k.Params["_outputFormat"]; len(f) > 0 && !slices.Contains(outputFormats, f[0]) {
		return fhir.Invalid("_outputFormat %q is not supported", f[0])
	}
	for _, t := range k.Params["_type"] {
		if !fhir.IsResourceType(t) {
			return fhir.Invalid("_type %q is not a resource type", t)
		}
	}
	if s := k.Params["_since"]; len(s) > 0 {
		if _, err := fhir.ParseInstant(s[0]); err != nil {
			return fhir.Invalid("_since %q is not an instant", s[0])
		}
	}
	if r.Method == http.MethodGet && len(k.Params["patient"]) > 0 {
		return fhir.Invalid("the patient parameter is accepted in a POST body only")
	}
	if len(k.Params["patient"]) > 0 && k.Path == "/fhir/$export" {
		return fhir.Invalid("the patient parameter does not apply to a system export")
	}
	return nil
}

// readParams collects the kick-off parameters, splitting comma lists
// (servers SHALL treat repeats and comma lists alike) except _typeFilter.
func readParams(r *http.Request) (map[string][]string, *fhir.Error) {
	out := map[string][]string{}
	add := func(name, v string) {
		if name == "_typeFilter" {
			out[name] = append(out[name], v)
			return
		}
		out[name] = append(out[name], strings.Split(v, ",")...)
	}
	if r.Method == http.MethodGet {
		for name, vs := range r.URL.Query() {
			for _, v := range vs {
				add(name, v)
			}
		}
		return out, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != fhir.MediaJSON {
		return out, fhir.Invalid("a POST kick-off needs a Parameters body as application/fhir+json")
	}
	var body struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name           string `json:"name"`
			ValueString    string `json:"valueString"`
			ValueInstant   string `json:"valueInstant"`
			ValueCode      string `json:"valueCode"`
			ValueReference *struct {
				Reference string `json:"reference"`
			} `json:"valueReference"`
		} `json:"parameter"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ResourceType != "Parameters" {
		return out, fhir.Invalid("the body is not a Parameters resource")
	}
	for _, p := range body.Parameter {
		v := p.ValueString + p.ValueInstant + p.ValueCode
		if p.ValueReference != nil {
			v = p.ValueReference.Reference
		}
		add(p.Name, v)
	}
	return out, nil
}

// status implements the status request.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	s.mu.Lock()
	s.stats.polls = append(s.stats.polls, time.Now())
	j := s.jobs[r.PathValue("id")]
	b := s.b
	var throttled bool
	if j != nil && !j.deleted {
		if throttled = s.b.PollThrottles > 0; throttled {
			s.b.PollThrottles--
		} else {
			j.polls++
		}
	}
	s.mu.Unlock()
	switch {
	case j == nil || j.deleted:
		writeOutcome(w, fhir.NotFound("no such export (it may have been cancelled)"))
		return
	case throttled:
		if b.RetryAfter != "" {
			w.Header().Set("Retry-After", b.RetryAfter)
		}
		writeOutcome(w, fhir.TooManyRequests("polling too often"))
		return
	case j.polls <= b.PollsBeforeDone:
		if b.RetryAfter != "" {
			w.Header().Set("Retry-After", b.RetryAfter)
		}
		w.Header().Set("X-Progress", fmt.Sprintf("poll %d of %d", j.polls, b.PollsBeforeDone))
		w.WriteHeader(http.StatusAccepted)
		return
	}
	m := s.manifest(j, b)
	if b.RevokeOnManifest {
		s.RevokeTokens()
	}
	w.Header().Set("Content-Type", fhir.MediaPlainJSON)
	w.Header().Set("Expires", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	w.Write(m)
}

// manifest builds the job's files and manifest on the first complete poll.
func (s *Server) manifest(j *job, b Behavior) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.manifest != nil {
		return j.manifest
	}
	type item struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int64  `json:"count"`
	}
	output, errs := []item{}, []item{}
	addFile := func(typ string, lines []string) item {
		f := &exportFile{typ: typ, plain: []byte(strings.Join(lines, "\n") + "\n"), sig: randomID()}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(f.plain)
		zw.Close()
		f.gz = gz.Bytes()
		j.files = append(j.files, f)
		u := fmt.Sprintf("%s/bulkfiles/%s/%d", s.URL, j.id, len(j.files)-1)
		if b.PublicFiles {
			u += "?sig=" + f.sig
		}
		return item{Type: typ, URL: u, Count: int64(len(lines)) + b.CountSkew}
	}
	var missing []string
	for _, typ := range s.exportTypes(j) {
		lines := s.data[typ]
		if len(lines) == 0 {
			missing = append(missing, typ)
			continue
		}
		for chunk := range slices.Chunk(lines, cmp(b.MaxLinesPerFile, len(lines))) {
			output = append(output, addFile(typ, chunk))
		}
	}
	if len(missing) > 0 {
		var lines []string
		for _, t := range missing {
			oo := fhir.NewOutcome(fhir.SeverityInformation, fhir.IssueInformational, "no resources of type "+t)
			lines = append(lines, string(oo.JSON()))
		}
		errs = append(errs, addFile("OperationOutcome", lines))
	}
	j.manifest, _ = json.Marshal(map[string]any{
		"transactionTime":     fhir.FormatInstant(j.started),
		"request":             j.request,
		"requiresAccessToken": !b.PublicFiles,
		"output":              output,
		"error":               errs,
	})
	return j.manifest
}

func (s *Server) exportTypes(j *job) []string {
	if len(j.types) > 0 {
		return j.types
	}
	return s.types
}

// deleteJob implements the delete request.
func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	j := s.jobs[id]
	s.stats.deletes = append(s.stats.deletes, id)
	gone := j == nil || j.deleted
	if !gone {
		j.deleted = true
	}
	s.mu.Unlock()
	if gone {
		writeOutcome(w, fhir.NotFound("no such export"))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// file serves an output file, with Range support through http.ServeContent.
func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.files = append(s.stats.files, FileRequest{Path: r.URL.Path, Range: r.Header.Get("Range"),
		AcceptEncoding: r.Header.Get("Accept-Encoding"), Authorization: r.Header.Get("Authorization") != ""})
	j := s.jobs[r.PathValue("id")]
	b := s.b
	var f *exportFile
	if n, err := strconv.Atoi(r.PathValue("n")); err == nil && j != nil && !j.deleted && n >= 0 && n < len(j.files) {
		f = j.files[n]
	}
	s.mu.Unlock()
	if f == nil {
		writeOutcome(w, fhir.NotFound("no such file"))
		return
	}
	if b.PublicFiles {
		if r.URL.Query().Get("sig") != f.sig {
			writeOutcome(w, fhir.Forbidden("bad capability URL"))
			return
		}
	} else if _, ok := s.authorize(w, r); !ok {
		return
	}
	content, etag := f.plain, `"`+f.sig+`"`
	w.Header().Set("Content-Type", fhir.MediaNDJSON)
	w.Header().Set("Vary", "Accept-Encoding")
	if b.Gzip && acceptsGzip(r) {
		content, etag = f.gz, `"`+f.sig+`-gz"`
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("ETag", etag)
	if b.DropAfter > 0 && r.Header.Get("Range") == "" && s.dropOnce(f) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:min(b.DropAfter, len(content))])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	if b.StallAfter > 0 && r.Header.Get("Range") == "" && s.dropOnce(f) {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:min(b.StallAfter, len(content))])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // hold the connection open, silent
		return
	}
	if b.IgnoreRange {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

func (s *Server) dropOnce(f *exportFile) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.dropped {
		return false
	}
	f.dropped = true
	return true
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.EqualFold(strings.TrimSpace(strings.Split(part, ";")[0]), "gzip") {
			return true
		}
	}
	return false
}
