package bulk

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/internal/backoff"
	"github.com/fhirgate/fhirgate/fhir"
)

// ManifestFileName is the name of the manifest written next to the files.
const ManifestFileName = "manifest.json"

// fileMode keeps exported health data private to the user.
const fileMode = 0o600

// copyBuffer is the size of the buffer each download streams through; it
// bounds the memory of a download whatever the file size.
const copyBuffer = 128 << 10

// File is a downloaded file.
type File struct {
	ManifestFile
	// Path is where the NDJSON was written (always uncompressed).
	Path string
	// Resources is the number of NDJSON lines in the file.
	Resources int64
	// Bytes is the size of the file written.
	Bytes int64
}

// CountError reports a file whose number of lines differs from the count
// in the manifest: the file is truncated or padded. The file is left at
// Path + ".part".
type CountError struct {
	Type string // the resource type of the file
	Path string // where the file was to be written
	Want int64  // the manifest's count
	Got  int64  // the lines received
}

// Error names the file and both counts.
func (e *CountError) Error() string {
	return fmt.Sprintf("bulk: %s file %s has %d resources but the manifest says %d", e.Type, e.Path+".part", e.Got, e.Want)
}

// Result is the outcome of a download.
type Result struct {
	// StatusURL is the export's status URL.
	StatusURL string
	// Manifest is the manifest the files came from.
	Manifest *Manifest
	// Dir is where the files and manifest.json were written.
	Dir string
	// Files lists the files written, in manifest order.
	Files []File
	// Resources and Bytes sum the output files (not error or deleted files).
	Resources, Bytes int64
}

// Download fetches every file of m into dir, Parallel at a time, and then
// writes the manifest as manifest.json. Each file streams to disk through a
// fixed buffer (decompressing gzip whether the server sent
// Content-Encoding: gzip or a gzip file), is resumed with a Range request
// when its connection breaks, and has its lines counted against the
// manifest's count. Output files are named TYPE.ndjson, then TYPE.2.ndjson
// and so on; error and deleted files get an "error." or "deleted." prefix.
// Files are written as NAME.part and renamed when complete.
func (c *Client) Download(ctx context.Context, m *Manifest, dir string) (*Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	files := m.Files()
	names := fileNames(files)
	t := newTracker(c, len(files))
	out := make([]File, len(files))
	hc := c.fileHTTP(m.RequiresAccessToken)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.parallel())
	for i, f := range files {
		g.Go(func() error {
			res, err := c.downloadFile(gctx, hc, f, filepath.Join(dir, names[i]), t)
			if err != nil {
				return err
			}
			out[i] = res
			t.fileDone(&out[i])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res := &Result{Manifest: m, Dir: dir, Files: out}
	for _, f := range out {
		if f.Kind == KindOutput {
			res.Resources += f.Resources
			res.Bytes += f.Bytes
		}
	}
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	c.report(Progress{Phase: PhaseDone, FilesTotal: len(files), FilesDone: len(files),
		Resources: t.resources.Load(), Bytes: t.bytes.Load()})
	return res, nil
}

func (c *Client) parallel() int {
	if c.Parallel > 0 {
		return c.Parallel
	}
	return 4
}

// fileNames chooses a local name for every file, unique within the export.
func fileNames(files []ManifestFile) []string {
	seen := map[string]int{}
	names := make([]string, len(files))
	for i, f := range files {
		base := safeName(f.Type)
		if f.Kind != KindOutput {
			base = f.Kind + "." + base
		}
		seen[base]++
		if n := seen[base]; n > 1 {
			base += "." + strconv.Itoa(n)
		}
		names[i] = base + ".ndjson"
	}
	return names
}

// safeName keeps a resource type usable as a file name whatever the server
// put in the manifest.
func safeName(t string) string {
	var b strings.Builder
	for _, r := range t {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "file"
	}
	return b.String()
}

func writeManifest(dir string, m *Manifest) error {
	raw := []byte(m.Raw)
	if len(raw) == 0 {
		var err error
		if raw, err = json.MarshalIndent(m, "", "  "); err != nil {
			return err
		}
	}
	path := filepath.Join(dir, ManifestFileName)
	if err := os.WriteFile(path+".part", raw, fileMode); err != nil {
		return fmt.Errorf("bulk: %w", err)
	}
	if err := os.Rename(path+".part", path); err != nil {
		return fmt.Errorf("bulk: %w", err)
	}
	return nil
}

// downloadFile streams one file to path.
func (c *Client) downloadFile(ctx context.Context, hc *http.Client, f ManifestFile, path string, t *tracker) (File, error) {
	res := File{ManifestFile: f, Path: path}
	body := &resumable{ctx: ctx, hc: hc, url: f.URL, maxResumes: c.resumes(), idle: c.idleTimeout(), log: c.log()}
	defer body.Close()
	if err := body.open(); err != nil {
		return res, err
	}
	dec, err := decode(body)
	if err != nil {
		return res, fmt.Errorf("bulk: %s: %w", client.RedactURL(body.req.URL), err)
	}
	part := path + ".part"
	out, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileMode)
	if err != nil {
		return res, fmt.Errorf("bulk: %w", err)
	}
	res.Resources, res.Bytes, err = copyCounting(out, dec, t)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(part)
		return res, fmt.Errorf("bulk: %s file %s: %w", f.Type, client.RedactURL(body.req.URL), err)
	}
	if f.Count != nil && *f.Count != res.Resources {
		return res, &CountError{Type: f.Type, Path: path, Want: *f.Count, Got: res.Resources}
	}
	if err := os.Rename(part, path); err != nil {
		return res, fmt.Errorf("bulk: %w", err)
	}
	return res, nil
}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return 2 * time.Minute
}

func (c *Client) resumes() int {
	if c.Resumes > 0 {
		return c.Resumes
	}
	return 5
}

// decode undoes gzip: a Content-Encoding: gzip response (Bulk Data 3.0
// export.html#output-file-request: clients SHALL accept gzip), or a body
// that is itself a gzip file (servers that offer
// application/fhir+ndjson+gzip). NDJSON never starts with the gzip magic
// bytes, so sniffing is safe.
func decode(r *resumable) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 4096)
	if strings.EqualFold(strings.TrimSpace(r.encoding), "gzip") {
		return gzip.NewReader(br)
	}
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return gzip.NewReader(br)
	}
	if r.encoding != "" && !strings.EqualFold(r.encoding, "identity") {
		return nil, fmt.Errorf("unsupported Content-Encoding %q", r.encoding)
	}
	return br, nil
}

// copyCounting copies src to dst and counts the NDJSON lines: the lines
// holding anything but white space, so that a trailing newline or a blank
// line does not count as a resource.
func copyCounting(dst io.Writer, src io.Reader, t *tracker) (lines, n int64, err error) {
	buf := make([]byte, copyBuffer)
	inLine := false
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			chunk := buf[:k]
			var l int64
			l, inLine = countLines(chunk, inLine)
			lines += l
			if _, werr := dst.Write(chunk); werr != nil {
				return lines, n, werr
			}
			n += int64(k)
			t.add(l, int64(k))
		}
		if rerr == io.EOF {
			if inLine {
				lines++
				t.add(1, 0)
			}
			return lines, n, nil
		}
		if rerr != nil {
			return lines, n, rerr
		}
	}
}

// countLines counts the non-blank lines that end in chunk. inLine says
// whether the line running into chunk already has content.
func countLines(chunk []byte, inLine bool) (int64, bool) {
	var lines int64
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		seg := chunk
		if i >= 0 {
			seg = chunk[:i]
		}
		if !inLine && len(bytes.TrimSpace(seg)) > 0 {
			inLine = true
		}
		if i < 0 {
			break
		}
		if inLine {
			lines++
		}
		inLine = false
		chunk = chunk[i+1:]
	}
	return lines, inLine
}

// resumable is the body of a file download that survives broken
// connections: when a read fails, it asks again from the byte where it
// stopped with a Range request (RFC 9110 §14), guarded by If-Range so that
// a file that changed meanwhile is refetched whole rather than spliced. A
// server that ignores Range gets the bytes already read skipped. The
// offset counts the bytes as sent (compressed, if Content-Encoding is gzip),
// which is what Range addresses, so resuming works under gzip too.
type resumable struct {
	ctx        context.Context
	hc         *http.Client
	url        string
	maxResumes int
	idle       time.Duration
	log        *slog.Logger

	req  *http.Request
	body io.ReadCloser
	// stop cancels the current request; watchdog fires it when no byte
	// has arrived for idle, turning a stalled connection into a broken
	// one that Read resumes.
	stop     context.CancelFunc
	watchdog *time.Timer
	offset   int64
	resumes  int
	encoding string
	etag     string
	modified string
}

// open sends the first request, retrying transient failures.
func (r *resumable) open() error {
	resp, err := r.get("")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return fmt.Errorf("bulk: download: %w", client.ResponseError(resp))
	}
	r.body = resp.Body
	r.encoding = resp.Header.Get("Content-Encoding")
	r.etag = resp.Header.Get("ETag")
	r.modified = resp.Header.Get("Last-Modified")
	return nil
}

// get sends one GET, with a Range from the current offset when rng is set,
// retrying transport errors and transient statuses a few times.
func (r *resumable) get(rng string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		rctx, stop := context.WithCancel(r.ctx)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, r.url, nil)
		if err != nil {
			stop()
			return nil, fmt.Errorf("bulk: download: %w", err)
		}
		r.req = req
		req.Header.Set("Accept", fhir.MediaNDJSON)
		// Set explicitly so that net/http does not decompress behind our
		// back: Range offsets must count the bytes as sent.
		req.Header.Set("Accept-Encoding", "gzip")
		if rng != "" {
			req.Header.Set("Range", rng)
			if validator := r.ifRange(); validator != "" {
				req.Header.Set("If-Range", validator)
			}
		}
		resp, err := r.hc.Do(req)
		err = redact(err)
		retry := err != nil && r.ctx.Err() == nil
		if err == nil {
			retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		}
		if !retry || attempt >= 3 {
			if err != nil {
				stop()
				return nil, fmt.Errorf("bulk: download: %w", err)
			}
			r.arm(stop)
			return resp, nil
		}
		stop()
		wait := backoff.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second}.Delay(attempt)
		if err == nil {
			herr := client.ResponseError(resp).(*client.HTTPError)
			resp.Body.Close()
			wait = max(wait, herr.RetryAfter)
			err = herr
		}
		r.log.Info("download failed; retrying", "url", client.RedactURL(req.URL), "err", err, "wait", wait)
		if serr := backoff.Sleep(r.ctx, wait); serr != nil {
			return nil, serr
		}
	}
}

// arm makes stop the current request's cancel function and starts the
// idle watchdog.
func (r *resumable) arm(stop context.CancelFunc) {
	if r.stop != nil {
		r.stop()
	}
	r.stop = stop
	if r.watchdog != nil {
		r.watchdog.Stop()
	}
	if r.idle > 0 {
		r.watchdog = time.AfterFunc(r.idle, stop)
	}
}

// ifRange picks the validator for If-Range: a strong ETag, else the date
// (RFC 9110 §13.1.5 forbids weak ETags there).
func (r *resumable) ifRange() string {
	if r.etag != "" && !strings.HasPrefix(r.etag, "W/") {
		return r.etag
	}
	return r.modified
}

// Read reads the body, resuming when the connection breaks.
func (r *resumable) Read(p []byte) (int, error) {
	for {
		n, err := r.body.Read(p)
		r.offset += int64(n)
		if n > 0 && r.watchdog != nil {
			r.watchdog.Reset(r.idle)
		}
		if err == nil || err == io.EOF || r.ctx.Err() != nil {
			return n, err
		}
		if r.resumes >= r.maxResumes {
			return n, fmt.Errorf("broke off after %d bytes and %d resumptions: %w", r.offset, r.resumes, err)
		}
		r.resumes++
		r.log.Info("download broke off; resuming", "url", client.RedactURL(r.req.URL), "offset", r.offset, "err", err)
		if rerr := r.resume(); rerr != nil {
			return n, fmt.Errorf("broke off after %d bytes (%v) and could not resume: %w", r.offset, err, rerr)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume replaces the broken body with one that continues at the offset.
func (r *resumable) resume() error {
	r.body.Close()
	resp, err := r.get("bytes=" + strconv.FormatInt(r.offset, 10) + "-")
	if err != nil {
		return err
	}
	if enc := resp.Header.Get("Content-Encoding"); !strings.EqualFold(enc, r.encoding) {
		resp.Body.Close()
		return fmt.Errorf("the Content-Encoding changed from %q to %q", r.encoding, enc)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != r.offset {
			resp.Body.Close()
			return fmt.Errorf("the server resumed at %q, not at byte %d", resp.Header.Get("Content-Range"), r.offset)
		}
	case http.StatusOK:
		// Range ignored, or If-Range found the file changed. Skipping is
		// only right if it is the same file.
		if et := resp.Header.Get("ETag"); et != r.etag || (et == "" && resp.Header.Get("Last-Modified") != r.modified) {
			resp.Body.Close()
			return errors.New("the file changed on the server while it was downloaded")
		}
		if _, err := io.CopyN(io.Discard, resp.Body, r.offset); err != nil {
			resp.Body.Close()
			return fmt.Errorf("skipping to byte %d: %w", r.offset, err)
		}
	default:
		defer resp.Body.Close()
		return client.ResponseError(resp)
	}
	r.body = resp.Body
	return nil
}

// rangeStart reads the first byte position of "bytes START-END/LEN".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return 0, false
	}
	startStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(startStr, 10, 64)
	return n, err == nil
}

// Close closes the current body and stops the watchdog.
func (r *resumable) Close() error {
	if r.watchdog != nil {
		r.watchdog.Stop()
	}
	if r.stop != nil {
		defer r.stop()
	}
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}

// redact hides the query of the URL in a transport error: a capability URL
// carries its credential there, and errors end up in logs.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return &url.Error{Op: ue.Op, URL: "(unparsable URL)", Err: ue.Err}
	}
	return &url.Error{Op: ue.Op, URL: client.RedactURL(u), Err: ue.Err}
}
