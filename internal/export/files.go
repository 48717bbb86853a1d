package export

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/store"
)

// fileHandler serves GET on a file URL (export.html "Output File
// Request"). The caller must be the job's client (or root), with a token
// whose scopes cover the file's type. Files are stored gzipped: a client
// that accepts gzip gets the stored bytes with Content-Encoding: gzip
// (Bulk Data 3.0 lets servers compress and clients SHALL accept it), any
// other the NDJSON decompressed on the fly. Range requests address the
// bytes of the representation sent, so a broken download resumes in
// either case. In the redirect mode a gzip-accepting client is sent to a
// short-lived presigned URL of the object storage instead (307).
func (s *Service) fileHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.writeError(w, r, fhir.Errorf(http.StatusMethodNotAllowed, fhir.IssueNotSupported,
			"an export file takes GET, not %s", r.Method))
		return
	}
	if err := s.serveFile(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Service) serveFile(w http.ResponseWriter, r *http.Request) error {
	r, job, err := s.ownJob(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	f, err := s.st.GetExportFile(r.Context(), job.ID, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && job.Status != store.ExportCompleted) {
		return fhir.NotFound("export %s has no file %s", job.ID, name)
	}
	if err != nil {
		return err
	}
	if f.Source != "" {
		// export.html "Privacy and Security": the token must cover the
		// resources being exported; a narrower one gets only its types.
		if err := s.mayExport(r.Context(), f.Source); err != nil {
			return err
		}
	}
	gz := acceptsGzip(r.Header.Values("Accept-Encoding"))
	if gz && s.cfg.Download == DownloadRedirect {
		u, err := s.cfg.Storage.Presign(r.Context(), f.Key, s.cfg.PresignTTL)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusTemporaryRedirect)
		return nil
	}
	obj, err := s.cfg.Storage.Open(r.Context(), f.Key)
	if errors.Is(err, ErrNotExist) {
		return fhir.NotFound("export %s: file %s is gone", job.ID, name)
	}
	if err != nil {
		return err
	}
	defer obj.Close()
	defer s.downloadStarted(job.ID)()
	h := w.Header()
	h.Set("Content-Type", fhir.MediaNDJSON)
	h.Set("Cache-Control", "private, no-store")
	h.Set("Vary", "Accept-Encoding")
	if gz {
		h.Set("Content-Encoding", "gzip")
		h.Set("ETag", fileETag(f, "gzip"))
		http.ServeContent(w, r, "", f.CreatedAt, obj)
		return nil
	}
	return serveIdentity(w, r, f, obj)
}

// fileETag is a strong validator per file and representation (Range and
// If-Range address one representation, RFC 9110 §13.1.5).
func fileETag(f *store.ExportFile, enc string) string {
	return fmt.Sprintf(`"%x-%s"`, f.CreatedAt.UnixMicro()^int64(len(f.Key))<<48, enc)
}

// acceptsGzip reads Accept-Encoding (RFC 9110 §12.5.3): gzip, x-gzip or *
// with a non-zero weight.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			q := 1.0
			if k, val, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				q, _ = strconv.ParseFloat(strings.TrimSpace(val), 64)
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}

// serveIdentity sends the decompressed NDJSON, honouring a single byte
// range of it (decompressing and skipping up to its start).
func serveIdentity(w http.ResponseWriter, r *http.Request, f *store.ExportFile, obj Object) error {
	etag := fileETag(f, "identity")
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	start, length, partial, err := byteRange(r, etag, f.RawSize)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", f.RawSize))
		return err
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, f.RawSize))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(obj, 64<<10))
	if err != nil {
		return fmt.Errorf("stored file %s: %w", f.Key, err)
	}
	if _, err := io.CopyN(io.Discard, zr, start); err != nil {
		return fmt.Errorf("stored file %s: %w", f.Key, err)
	}
	w.WriteHeader(status)
	// Errors past this point cannot change the status: the client sees a
	// short body (Content-Length) and resumes with a Range.
	io.CopyN(w, zr, length)
	return nil
}

// byteRange reads a single-range Range header against size (RFC 9110
// §14.2); several ranges, or an If-Range that does not match, give the
// whole body.
func byteRange(r *http.Request, etag string, size int64) (start, length int64, partial bool, err error) {
	rng := r.Header.Get("Range")
	if rng == "" || (r.Header.Get("If-Range") != "" && r.Header.Get("If-Range") != etag) {
		return 0, size, false, nil
	}
	spec, ok := strings.CutPrefix(rng, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, _ := strings.Cut(strings.TrimSpace(spec), "-")
	unsatisfiable := fhir.Errorf(http.StatusRequestedRangeNotSatisfiable, fhir.IssueInvalid, "Range %q is outside the file's %d bytes", rng, size)
	if first == "" { // the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, unsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 || a >= size {
		return 0, 0, false, unsatisfiable
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, 0, false, unsatisfiable
		}
		b = min(b, size-1)
	}
	return a, b - a + 1, true, nil
}
