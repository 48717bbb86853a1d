package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/internal/backoff"
	"github.com/fhirgate/fhirgate/fhir"
)

// ErrMaxWait is returned when an export is not complete within
// PollPolicy.MaxWait.
var ErrMaxWait = errors.New("bulk: the export did not complete within the maximum wait")

// maxManifest bounds a manifest body; one entry is about 200 bytes.
const maxManifest = 64 << 20

// PollPolicy tunes kick-off retries and status polling. Bulk Data 2.0
// (export.html#bulk-data-status-request) asks clients to honour
// Retry-After and otherwise back off exponentially.
type PollPolicy struct {
	// Initial is the first wait when the server sends no Retry-After;
	// zero means 1s. Later waits grow by half each time.
	Initial time.Duration
	// Max caps the waits computed without Retry-After; zero means 1 min.
	// A Retry-After is honoured even when it is longer.
	Max time.Duration
	// Min is the shortest wait between two polls, whatever Retry-After
	// says; zero means 1s.
	Min time.Duration
	// MaxWait bounds the whole kick-off and polling; zero means no limit.
	MaxWait time.Duration
	// MaxErrors is how many transient poll failures in a row are tolerated;
	// zero means 5.
	MaxErrors int
	// KickoffAttempts is how many times a kick-off answered with 429 or a
	// transient error is tried; zero means 6.
	KickoffAttempts int
}

func (p PollPolicy) withDefaults() PollPolicy {
	if p.Initial <= 0 {
		p.Initial = time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Minute
	}
	if p.Min <= 0 {
		p.Min = time.Second
	}
	if p.MaxErrors <= 0 {
		p.MaxErrors = 5
	}
	if p.KickoffAttempts <= 0 {
		p.KickoffAttempts = 6
	}
	return p
}

func (p PollPolicy) backoff() backoff.Policy {
	return backoff.Policy{Initial: p.Initial, Max: p.Max, Multiplier: 1.5}
}

// Client runs Bulk Data exports against one FHIR server. Set BaseURL and
// HTTP (usually client.TokenSource.Client(), so that every request carries
// a fresh token and a 401 is retried with a new one); the other fields
// have usable zero values. A Client is safe for concurrent use once its
// fields are set.
type Client struct {
	// BaseURL is the FHIR base URL, e.g. https://example.org/fhir.
	BaseURL string
	// HTTP sends kick-off, status and cancel requests, and downloads files
	// when the manifest says requiresAccessToken. Nil means http.DefaultClient.
	HTTP *http.Client
	// FileHTTP downloads files when requiresAccessToken is false: those are
	// capability URLs that SHALL NOT receive a token (Bulk Data 3.0). Nil
	// means a client without authorization (over the base transport of
	// HTTP when that is a *client.Transport).
	FileHTTP *http.Client
	// Poll tunes kick-off retries and polling.
	Poll PollPolicy
	// Parallel is how many files download at once; zero means 4.
	Parallel int
	// Resumes is how many times one file download may be resumed after its
	// connection broke; zero means 5.
	Resumes int
	// IdleTimeout treats a download that receives nothing for this long as
	// broken, and resumes it; zero means 2 minutes.
	IdleTimeout time.Duration
	// RequestTimeout bounds each kick-off, status and delete request; zero
	// means 1 minute.
	RequestTimeout time.Duration
	// Cleanup sends DELETE to the status URL after a successful download,
	// which tells the server it may remove the files (export.html#bulk-data-delete-request).
	Cleanup bool
	// OnProgress, when set, receives progress reports, one call at a time.
	OnProgress func(Progress)
	// Logger receives retries and resumptions (never tokens or signed
	// URLs); nil discards them.
	Logger *slog.Logger

	progressMu sync.Mutex
}

// New returns a Client for the FHIR server at baseURL that sends requests
// with hc.
func New(baseURL string, hc *http.Client) *Client {
	return &Client{BaseURL: baseURL, HTTP: hc}
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) fileHTTP(requiresToken bool) *http.Client {
	if requiresToken {
		return c.http()
	}
	if c.FileHTTP != nil {
		return c.FileHTTP
	}
	// Reuse the base of an authorizing transport (it may carry TLS
	// settings the file server needs), without the authorization.
	if t, ok := c.http().Transport.(*client.Transport); ok && t.Base != nil {
		return &http.Client{Transport: t.Base}
	}
	return &http.Client{}
}

func (c *Client) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) report(p Progress) {
	if c.OnProgress == nil {
		return
	}
	c.progressMu.Lock()
	defer c.progressMu.Unlock()
	c.OnProgress(p)
}

// Job is a started export, known by its status URL.
type Job struct {
	// StatusURL is the absolute Content-Location of the kick-off response.
	StatusURL string
	c         *Client
}

// Job returns the export whose status URL is statusURL, for example one
// started earlier by another process.
func (c *Client) Job(statusURL string) *Job { return &Job{StatusURL: statusURL, c: c} }

// Kickoff starts an export (export.html#bulk-data-kick-off-request) with
// Accept: application/fhir+json and Prefer: respond-async, as GET with query
// parameters, or as POST with a Parameters body when req.Patients is set or
// req.POST asks for it. A 429 (another export of this client is running)
// or a transient failure is retried after Retry-After or a backoff.
func (c *Client) Kickoff(ctx context.Context, req Request) (*Job, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if c.BaseURL == "" {
		return nil, errors.New("bulk: Client.BaseURL is empty")
	}
	p := c.Poll.withDefaults()
	var deadline time.Time
	if p.MaxWait > 0 {
		deadline = time.Now().Add(p.MaxWait)
	}
	for attempt := 0; ; attempt++ {
		job, err := c.kickoffOnce(ctx, req)
		if err == nil {
			return job, nil
		}
		var he *client.HTTPError
		if !errors.As(err, &he) || !he.Temporary() || attempt+1 >= p.KickoffAttempts {
			return nil, err
		}
		wait := max(he.RetryAfter, p.backoff().Delay(attempt), p.Min)
		if !deadline.IsZero() && time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("%w: %w", ErrMaxWait, err)
		}
		c.log().Info("export kick-off refused; retrying", "status", he.StatusCode, "wait", wait)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) kickoffOnce(ctx context.Context, req Request) (*Job, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	hreq, err := c.kickoffRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("bulk: kick-off: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		if resp.StatusCode < 300 {
			return nil, fmt.Errorf("bulk: kick-off: %s answered %d instead of 202 Accepted; it does not run exports asynchronously",
				client.RedactURL(hreq.URL), resp.StatusCode)
		}
		return nil, fmt.Errorf("bulk: kick-off: %w", client.ResponseError(resp))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	loc := resp.Header.Get("Content-Location")
	if loc == "" {
		return nil, errors.New("bulk: kick-off: the 202 response has no Content-Location")
	}
	// The specification requires an absolute URL; a relative one is
	// resolved against the kick-off URL rather than refused.
	u, err := hreq.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("bulk: kick-off: bad Content-Location %q: %w", loc, err)
	}
	return &Job{StatusURL: u.String(), c: c}, nil
}

func (c *Client) kickoffRequest(ctx context.Context, req Request) (*http.Request, error) {
	u := strings.TrimRight(c.BaseURL, "/") + "/" + req.path()
	var (
		hreq *http.Request
		err  error
	)
	if req.usePOST() {
		body, merr := req.parameters()
		if merr != nil {
			return nil, merr
		}
		hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err == nil {
			hreq.Header.Set("Content-Type", fhir.MediaJSON)
		}
	} else {
		if q := req.query().Encode(); q != "" {
			u += "?" + q
		}
		hreq, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("bulk: kick-off: %w", err)
	}
	hreq.Header.Set("Accept", fhir.MediaJSON)
	prefer := "respond-async"
	if req.Lenient {
		prefer += ", handling=lenient"
	}
	hreq.Header.Set("Prefer", prefer)
	return hreq, nil
}

// Status is the answer to one status poll.
type Status struct {
	// Done is true when the export is complete and Manifest is set.
	Done bool
	// Manifest is the completed export's manifest.
	Manifest *Manifest
	// Progress is the server's X-Progress text while the export runs.
	Progress string
	// RetryAfter is the server's Retry-After, if HasRetryAfter.
	RetryAfter    time.Duration
	HasRetryAfter bool
	// Throttled is true when the server answered 429: poll less often.
	Throttled bool
}

// Poll asks once for the export's status (export.html#bulk-data-status-request).
// 202 and 429 are reported in Status; failures, including the job's own
// failure and 404 after a cancel, are errors (*client.HTTPError).
func (j *Job) Poll(ctx context.Context) (*Status, error) {
	ctx, cancel := j.c.withTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.StatusURL, nil)
	if err != nil {
		return nil, fmt.Errorf("bulk: status: %w", err)
	}
	req.Header.Set("Accept", fhir.MediaPlainJSON)
	resp, err := j.c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("bulk: status: %w", err)
	}
	defer resp.Body.Close()
	st := &Status{}
	st.RetryAfter, st.HasRetryAfter = backoff.RetryAfter(resp.Header, time.Now())
	switch resp.StatusCode {
	case http.StatusOK:
		m, err := decodeManifest(resp.Body)
		if err != nil {
			return nil, err
		}
		st.Done, st.Manifest = true, m
	case http.StatusAccepted:
		st.Progress = resp.Header.Get("X-Progress")
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	case http.StatusTooManyRequests:
		st.Throttled = true
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	default:
		return nil, fmt.Errorf("bulk: status: %w", client.ResponseError(resp))
	}
	return st, nil
}

func decodeManifest(r io.Reader) (*Manifest, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("bulk: reading the manifest: %w", err)
	}
	if len(raw) > maxManifest {
		return nil, fmt.Errorf("bulk: the manifest is larger than %d bytes", maxManifest)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("bulk: the manifest is not valid JSON: %w", err)
	}
	for _, f := range m.Files() {
		u, err := url.Parse(f.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("bulk: manifest %s file of type %q has no absolute URL", f.Kind, f.Type)
		}
	}
	m.Raw = raw
	return &m, nil
}

// Wait polls until the export completes and returns its manifest. Between
// polls it waits for the server's Retry-After (at least PollPolicy.Min), or
// backs off exponentially when there is none; a 429 slows it down further.
// Transient failures are retried up to PollPolicy.MaxErrors in a row.
// ErrMaxWait is returned after PollPolicy.MaxWait.
func (j *Job) Wait(ctx context.Context) (*Manifest, error) {
	p := j.c.Poll.withDefaults()
	var deadline time.Time
	if p.MaxWait > 0 {
		deadline = time.Now().Add(p.MaxWait)
	}
	var slow, errs, polls int
	for {
		st, err := j.Poll(ctx)
		polls++
		var wait time.Duration
		switch {
		case err != nil:
			var he *client.HTTPError
			if ctx.Err() != nil || errs >= p.MaxErrors || (errors.As(err, &he) && !he.Temporary()) {
				return nil, err
			}
			errs++
			wait = p.backoff().Delay(errs)
			if he != nil {
				wait = max(wait, he.RetryAfter)
			}
			j.c.log().Info("export status poll failed; retrying", "err", err, "wait", wait)
		case st.Done:
			j.c.report(Progress{Phase: PhaseComplete, Polls: polls, FilesTotal: len(st.Manifest.Files())})
			return st.Manifest, nil
		default:
			errs = 0
			if st.Throttled {
				slow++ // polling too often: back off beyond what we did before
			}
			wait = p.backoff().Delay(slow)
			if st.HasRetryAfter {
				wait = st.RetryAfter
				if st.Throttled {
					wait = max(wait, p.backoff().Delay(slow))
				}
			} else {
				slow++
			}
			j.c.report(Progress{Phase: PhaseWaiting, Message: st.Progress, Polls: polls})
		}
		wait = max(wait, p.Min)
		if !deadline.IsZero() && time.Now().Add(wait).After(deadline) {
			return nil, ErrMaxWait
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// Cancel sends DELETE to the status URL (export.html#bulk-data-delete-request):
// it cancels a running export, or tells the server that the files of a
// finished one may go. A 404 means the job is already gone and is not an error.
func (j *Job) Cancel(ctx context.Context) error {
	ctx, cancel := j.c.withTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, j.StatusURL, nil)
	if err != nil {
		return fmt.Errorf("bulk: delete: %w", err)
	}
	req.Header.Set("Accept", fhir.MediaJSON)
	resp, err := j.c.http().Do(req)
	if err != nil {
		return fmt.Errorf("bulk: delete: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	return fmt.Errorf("bulk: delete: %w", client.ResponseError(resp))
}

// withTimeout bounds one API request.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.RequestTimeout
	if d <= 0 {
		d = time.Minute
	}
	return context.WithTimeout(ctx, d)
}
