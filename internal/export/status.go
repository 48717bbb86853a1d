package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Manifest is the body of a completed export's status response
// (export.html "Response - Complete Status").
type Manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestFile `json:"output"`
	// Deleted is present only for exports with _since: without it nothing
	// was looked for, and an empty array would wrongly say "no deletions".
	Deleted []ManifestFile `json:"deleted,omitempty"`
	Error   []ManifestFile `json:"error"`
}

// ManifestFile is one file of a manifest.
type ManifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int64  `json:"count"`
}

// statusHandler serves GET (poll) and DELETE (cancel) on a status URL.
func (s *Service) statusHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "GET, DELETE")
		s.writeError(w, r, fhir.Errorf(http.StatusMethodNotAllowed, fhir.IssueNotSupported,
			"an export status URL takes GET or DELETE, not %s", r.Method))
		return
	}
	r, job, err := s.ownJob(r, r.PathValue("id"))
	if err == nil {
		if r.Method == http.MethodDelete {
			err = s.cancel(w, r, job)
		} else {
			err = s.status(w, r, job)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

// ownJob authenticates the request and returns the job if the caller may
// see it: the client that started it (with any valid token: exports
// outlive tokens) or root. Others get the 404 of an unknown job, which
// tells them nothing about other clients' exports.
func (s *Service) ownJob(r *http.Request, id string) (*http.Request, *store.ExportJob, error) {
	if s.authenticate == nil {
		return r, nil, errors.New("export: Register was not called")
	}
	r, err := s.authenticate(r)
	if err != nil {
		return r, nil, err
	}
	p := authz.FromContext(r.Context())
	if p == nil {
		return r, nil, fhir.Unauthorized("authentication required: send the access token of the client that started the export")
	}
	job, err := s.st.GetExportJob(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.visible(job, p)) {
		return r, nil, fhir.NotFound("no export %s: it is unknown, cancelled, expired or another client's", id)
	}
	return r, job, err
}

func (s *Service) visible(job *store.ExportJob, p *authz.Principal) bool {
	if job.Status == store.ExportCancelled || (p.ClientID != job.Owner && !p.Root) {
		return false
	}
	return job.Status == store.ExportRunning || s.now().Before(job.ExpiresAt)
}

// mayPoll re-checks what the kick-off checked: status requests SHALL be
// protected like the kick-off, with a token whose scopes cover every type
// being exported (export.html "Privacy and Security").
func (s *Service) mayPoll(ctx context.Context, job *store.ExportJob) (*Params, error) {
	params, err := decodeParams(job)
	if err != nil {
		return nil, err
	}
	opType := map[Level]string{LevelPatient: "Patient", LevelGroup: "Group"}[params.Level]
	if err := s.authz.Authorize(ctx, authz.Request{Interaction: authz.Operation, Operation: "$export", Method: http.MethodGet,
		Type: opType, ID: params.GroupID}); err != nil {
		return nil, err
	}
	for _, t := range params.Types {
		if err := s.mayExport(ctx, t); err != nil {
			return nil, err
		}
	}
	return params, nil
}

func (s *Service) status(w http.ResponseWriter, r *http.Request, job *store.ExportJob) error {
	ctx := r.Context()
	if _, err := s.mayPoll(ctx, job); err != nil {
		return err
	}
	retry := retryAfterSeconds(s.cfg.PollInterval)
	switch job.Status {
	case store.ExportFailed:
		return fhir.Errorf(http.StatusInternalServerError, fhir.IssueException, "the export failed: %s", job.Error)
	case store.ExportCompleted:
		return s.writeManifest(w, r, job)
	}
	// export.html "In-Progress Status": polling faster than asked gets 429.
	ok, err := s.st.TouchExportJob(ctx, job.ID, s.now(), s.cfg.PollInterval)
	if err != nil {
		return err
	}
	if !ok {
		return &retryError{fe: fhir.TooManyRequests("polled too often: wait %d s between status requests (Retry-After)", retry), after: retry}
	}
	progress, err := s.progress(ctx, job)
	if err != nil {
		return err
	}
	w.Header().Set("X-Progress", progress)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// progress is the X-Progress text (export.html: under 100 characters).
func (s *Service) progress(ctx context.Context, job *store.ExportJob) (string, error) {
	tasks, err := s.st.ExportTasks(ctx, job.ID)
	if err != nil {
		return "", err
	}
	var done, total int
	var resources int64
	for _, t := range tasks {
		if t.Kind == kindPlan {
			if !t.Done {
				return "waiting to start", nil
			}
			continue
		}
		total++
		resources += t.Total
		if t.Done {
			done++
		}
	}
	return fmt.Sprintf("%d of %d parts done, %d resources written", done, total, resources), nil
}

func (s *Service) writeManifest(w http.ResponseWriter, r *http.Request, job *store.ExportJob) error {
	files, err := s.st.ExportFiles(r.Context(), job.ID)
	if err != nil {
		return err
	}
	params, err := decodeParams(job)
	if err != nil {
		return err
	}
	m := Manifest{
		TransactionTime:     fhir.FormatInstant(job.TransactionTime),
		Request:             job.Request,
		RequiresAccessToken: true,
		Output:              []ManifestFile{},
		Error:               []ManifestFile{},
	}
	if params.Since != 0 {
		m.Deleted = []ManifestFile{}
	}
	for _, f := range files {
		mf := ManifestFile{Type: f.Type, URL: s.fileURL(job.ID, f.Name), Count: f.Count}
		switch f.Kind {
		case kindDeleted:
			m.Deleted = append(m.Deleted, mf)
		case kindError:
			m.Error = append(m.Error, mf)
		default:
			m.Output = append(m.Output, mf)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	w.Header().Set("Expires", job.ExpiresAt.UTC().Format(http.TimeFormat))
	writeJSON(w, http.StatusOK, "application/json", b)
	return nil
}

// cancel answers DELETE (export.html "Bulk Data Delete Request"): 202, and
// from then on the status URL and the files answer 404. The files are
// removed by the sweeper once no worker holds the job's tasks.
func (s *Service) cancel(w http.ResponseWriter, r *http.Request, job *store.ExportJob) error {
	err := s.st.CancelExportJob(r.Context(), job.ID)
	if errors.Is(err, store.ErrNotFound) {
		return fhir.NotFound("no export %s", job.ID)
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "export cancelled", "job", job.ID)
	select {
	case s.sweep <- struct{}{}:
	default:
	}
	o := fhir.NewOutcome(fhir.SeverityInformation, fhir.IssueInformational, "export "+job.ID+" is cancelled and its files deleted")
	writeJSON(w, http.StatusAccepted, fhir.MediaJSON+"; charset=utf-8", o.JSON())
	return nil
}
