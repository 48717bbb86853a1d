package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/fhir"
)

// Bundle types ToServer posts (R4 bundle.html#transaction).
const (
	// Transaction Bundles are atomic: the server stores all their entries
	// or none.
	Transaction = "transaction"
	// Batch Bundles are processed entry by entry: one refused resource
	// does not hold back the others.
	Batch = "batch"
)

// Defaults of Server.
const (
	DefaultMaxBundleBytes = 8 << 20 // half of fhirgate's default request body limit
	DefaultAttempts       = 4
	DefaultRequestTimeout = 5 * time.Minute
)

// Server is the FHIR server that ToServer loads into.
type Server struct {
	// BaseURL is the FHIR base URL, e.g. http://127.0.0.1:8080/fhir.
	BaseURL string
	// HTTP sends the Bundles. To authorize them, pass the Client of a
	// client.TokenSource: it adds a bearer token to each request and, on
	// a 401, sends the Bundle again with a new token. Nil means
	// http.DefaultClient.
	HTTP *http.Client
	// Bundle is Transaction (the default) or Batch.
	Bundle string
	// Parallel, when set, is the number of Bundles in flight, in place of
	// Options.Parallel.
	Parallel int
	// MaxBundleBytes cuts a Bundle short of Options.BatchSize entries when
	// it would grow past this size; zero means DefaultMaxBundleBytes.
	MaxBundleBytes int
	// Attempts is the number of tries of a Bundle that fails for a
	// transient reason (network error, 429, 502, 503, 504, transient
	// OperationOutcome); zero means DefaultAttempts, one disables retries.
	Attempts int
	// RequestTimeout bounds each try; zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
}

func (s Server) withDefaults() (Server, error) {
	if s.HTTP == nil {
		s.HTTP = http.DefaultClient
	}
	switch s.Bundle {
	case "":
		s.Bundle = Transaction
	case Transaction, Batch:
	default:
		return s, fmt.Errorf("bundle type %q: want %q or %q", s.Bundle, Transaction, Batch)
	}
	if s.MaxBundleBytes <= 0 {
		s.MaxBundleBytes = DefaultMaxBundleBytes
	}
	if s.Attempts <= 0 {
		s.Attempts = DefaultAttempts
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = DefaultRequestTimeout
	}
	s.BaseURL = strings.TrimRight(s.BaseURL, "/")
	if s.BaseURL == "" {
		return s, errors.New("the server's FHIR base URL is empty")
	}
	return s, nil
}

// ToServer loads the NDJSON of srcs into the FHIR server srv with
// transaction or batch Bundles of PUT Type/id entries (R4
// http.html#transaction), Options.BatchSize entries each and
// Options.Parallel Bundles in flight. Resources keep their ids. Bundles may commit out of
// input order, except that a Bundle that changes a resource waits for any
// Bundle in flight that changes the same one, so that the later line wins
// as with ToStore.
//
// A resource the server refuses (a 4xx naming its entry) stops the load
// with a *LineError, or is counted as invalid under Options.SkipInvalid
// (the rest of its Bundle is sent again without it). Other failures end
// the load with the server's error, a *client.HTTPError.
func ToServer(ctx context.Context, srv Server, srcs []Source, opts Options) (*Result, error) {
	if srv.Parallel > 0 {
		opts.Parallel = srv.Parallel
	}
	o := opts.withDefaults(DefaultServerBatch)
	srv, err := srv.withDefaults()
	if err != nil {
		return nil, err
	}
	return run(ctx, srcs, o, func(ctx context.Context, g *errgroup.Group, t *tally) sink {
		return newHTTPSink(g, t, srv, o)
	})
}

// httpSink posts the batches as Bundles.
type httpSink struct {
	*batcher
	srv Server
	o   Options
	t   *tally
}

func newHTTPSink(g *errgroup.Group, t *tally, srv Server, o Options) *httpSink {
	s := &httpSink{batcher: newBatcher(g, o.BatchSize, o.Parallel), srv: srv, o: o, t: t}
	s.maxBytes = srv.MaxBundleBytes
	s.newBatch = s.newBundle
	s.put = s.putEntry
	s.deliver = s.deliverBundle
	return s
}

func (s *httpSink) newBundle() *batch {
	b := &batch{typ: s.srv.Bundle, keys: newKeys(s.o.BatchSize), done: make(chan struct{})}
	b.body = append(make([]byte, 0, 64<<10), `{"resourceType":"Bundle","type":"`...)
	b.body = append(b.body, b.typ...)
	b.body = append(b.body, `","entry":[`...)
	return b
}

// putEntry appends a PUT Type/id entry to the Bundle's JSON.
func (s *httpSink) putEntry(b *batch, key string, e entry) {
	if len(b.entries) > 0 {
		b.body = append(b.body, ',')
	}
	start := len(b.body)
	b.body = append(b.body, `{"fullUrl":`...)
	b.body = strconv.AppendQuote(b.body, s.srv.BaseURL+"/"+key)
	b.body = append(b.body, `,"resource":`...)
	b.body = append(b.body, e.raw...)
	b.body = append(b.body, `,"request":{"method":"PUT","url":"`...)
	b.body = append(b.body, key...) // type and id need no escaping: both were validated
	b.body = append(b.body, `"}}`...)
	b.spans = append(b.spans, span{start, len(b.body)})
	e.raw = nil // the body holds it now
	b.entries = append(b.entries, e)
}

// bundleBytes closes the Bundle's JSON.
func bundleBytes(b *batch) []byte { return append(b.body, "]}"...) }

// without rebuilds the Bundle without entry i.
func without(b *batch, i int) *batch {
	nb := &batch{typ: b.typ, keys: b.keys, done: b.done}
	head := b.spans[0].start
	nb.body = append(make([]byte, 0, len(b.body)), b.body[:head]...)
	for j, sp := range b.spans {
		if j == i {
			continue
		}
		if len(nb.entries) > 0 {
			nb.body = append(nb.body, ',')
		}
		start := len(nb.body)
		nb.body = append(nb.body, b.body[sp.start:sp.end]...)
		nb.spans = append(nb.spans, span{start, len(nb.body)})
		nb.entries = append(nb.entries, b.entries[j])
	}
	return nb
}

// deliverBundle posts b until it is stored, dropping the entries the
// server refuses when SkipInvalid allows.
func (s *httpSink) deliverBundle(ctx context.Context, b *batch) error {
	for len(b.entries) > 0 {
		refused, err := s.post(ctx, b)
		if err != nil {
			return err
		}
		if refused == nil {
			s.t.written(b.entries)
			return nil
		}
		if !s.o.SkipInvalid {
			return refused.err
		}
		if b.typ == Batch {
			// A batch stores every other entry: count them, done.
			s.settleBatch(b, refused)
			return nil
		}
		i := refused.index[0]
		s.t.rejected(b.entries[i], refused.err)
		b = without(b, i)
	}
	return nil
}

// refusal names the entries the server refused and the error of the first.
type refusal struct {
	index []int
	errs  map[int]*LineError
	err   *LineError
}

func (s *httpSink) settleBatch(b *batch, r *refusal) {
	ok := make([]entry, 0, len(b.entries)-len(r.index))
	for i, e := range b.entries {
		if le, bad := r.errs[i]; bad {
			s.t.rejected(e, le)
			continue
		}
		ok = append(ok, e)
	}
	s.t.written(ok)
}

// post sends b once it succeeds or fails for good. A nil refusal and nil
// error mean every entry is stored.
func (s *httpSink) post(ctx context.Context, b *batch) (*refusal, error) {
	body := bundleBytes(b)
	for attempt := 1; ; attempt++ {
		refused, err := s.postOnce(ctx, b, body)
		if err == nil || attempt >= s.srv.Attempts || !transient(ctx, err) {
			return refused, err
		}
		if err := sleep(ctx, retryDelay(err, attempt)); err != nil {
			return nil, err
		}
	}
}

func (s *httpSink) postOnce(ctx context.Context, b *batch, body []byte) (*refusal, error) {
	rctx, cancel := context.WithTimeout(ctx, s.srv.RequestTimeout)
	defer cancel()
	// A bytes.Reader body lets the token transport send the Bundle again
	// after a 401 (http.NewRequest sets GetBody for it).
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.srv.BaseURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", fhir.MediaJSON)
	req.Header.Set("Accept", fhir.MediaJSON)
	req.Header.Set("Prefer", "return=minimal")
	resp, err := s.srv.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		herr := client.ResponseError(resp)
		if r := s.entryRefusal(b, herr); r != nil {
			return r, nil
		}
		return nil, herr
	}
	if b.typ == Transaction {
		_, err := io.Copy(io.Discard, resp.Body)
		return nil, err
	}
	return s.batchRefusals(b, resp.Body)
}

// entryPrefix is how fhirgate names the entry that failed a transaction;
// other servers may not, and then the whole Bundle is in error.
var entryPrefix = regexp.MustCompile(`^entry (\d+)\b`)

// entryRefusal reads a failed transaction's error as the refusal of one
// entry when it names one and is the client's fault (4xx other than
// authorization and limits).
func (s *httpSink) entryRefusal(b *batch, err error) *refusal {
	var he *client.HTTPError
	if !errors.As(err, &he) || !entryStatus(he.StatusCode) {
		return nil
	}
	m := entryPrefix.FindStringSubmatch(he.Detail())
	if m == nil {
		return nil
	}
	i, _ := strconv.Atoi(m[1])
	if i < 0 || i >= len(b.entries) {
		return nil
	}
	le := s.lineError(b.entries[i], fmt.Errorf("the server refused it (%d): %s", he.StatusCode, he.Detail()))
	return &refusal{index: []int{i}, errs: map[int]*LineError{i: le}, err: le}
}

// entryStatus reports whether a status blames the entry rather than the
// request as a whole.
func entryStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusGone,
		http.StatusPreconditionFailed, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// batchResponse is the part of a batch-response Bundle that tells which
// entries failed.
type batchResponse struct {
	Entry []struct {
		Response struct {
			Status  string                 `json:"status"`
			Outcome *fhir.OperationOutcome `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

func (s *httpSink) batchRefusals(b *batch, body io.Reader) (*refusal, error) {
	var br batchResponse
	if err := json.NewDecoder(body).Decode(&br); err != nil {
		return nil, fmt.Errorf("the batch response is not a Bundle: %w", err)
	}
	if len(br.Entry) != len(b.entries) {
		return nil, fmt.Errorf("the batch response has %d entries for %d sent", len(br.Entry), len(b.entries))
	}
	var r *refusal
	for i, e := range br.Entry {
		if strings.HasPrefix(e.Response.Status, "2") {
			continue
		}
		code, _ := strconv.Atoi(strings.Fields(e.Response.Status + " 0")[0])
		detail := e.Response.Status
		if e.Response.Outcome != nil && len(e.Response.Outcome.Issue) > 0 {
			detail = e.Response.Outcome.Issue[0].Diagnostics
		}
		cause := fmt.Errorf("the server refused it (%s): %s", e.Response.Status, detail)
		if !entryStatus(code) {
			return nil, fmt.Errorf("%s: %w", s.position(b.entries[i]), cause)
		}
		if r == nil {
			r = &refusal{errs: map[int]*LineError{}}
		}
		le := s.lineError(b.entries[i], cause)
		r.index = append(r.index, i)
		r.errs[i] = le
		if r.err == nil {
			r.err = le
		}
	}
	return r, nil
}

func (s *httpSink) lineError(e entry, err error) *LineError {
	return &LineError{File: s.t.files[e.file].Name, Line: e.line, Err: err}
}

func (s *httpSink) position(e entry) string {
	return fmt.Sprintf("%s:%d", s.t.files[e.file].Name, e.line)
}

// transient reports whether trying again may succeed: a network failure or
// a server asking to come back later, and never a cancelled load.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var he *client.HTTPError
	if errors.As(err, &he) {
		return he.Temporary()
	}
	return !errors.Is(err, context.Canceled)
}

// retryDelay is the server's Retry-After when it gave one (capped at a
// minute), else an exponential backoff with jitter.
func retryDelay(err error, attempt int) time.Duration {
	var he *client.HTTPError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		return min(he.RetryAfter, time.Minute)
	}
	d := min(500*time.Millisecond<<(attempt-1), 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
