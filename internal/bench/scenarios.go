package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/smart"
)

// loadDB loads the data set straight into the database, in this process,
// as `fhirgate load --db` does: the loader's ToStore, LoadBatch resources
// per transaction. Latency is per batch (the time between two commits).
func (s *session) loadDB(ctx context.Context) Result {
	r := Result{Scenario: ScenarioLoad, What: fmt.Sprintf("`load --db`: NDJSON into the store, %d per transaction", s.cfg.LoadBatch),
		Available: true, Unit: "resources", RSSOf: "loader (harness process)", LatencyOf: "batch"}
	st, err := sqlstore.Open(ctx, s.db.URL, sqlstore.Options{})
	if err != nil {
		r.Error = "open the database: " + err.Error()
		return r
	}
	defer st.Close()
	srcs, err := loader.Files(s.data.Dir)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	self := NewRSSMonitor("self", 100*time.Millisecond)
	defer self.Stop()
	var hist Histogram
	last := time.Now()
	m := s.startMeasure(self)
	res, err := loader.ToStore(ctx, st, srcs, loader.Options{BatchSize: s.cfg.LoadBatch, OnProgress: func(p loader.Progress) {
		if p.Finished != nil {
			return
		}
		now := time.Now()
		hist.Record(now.Sub(last))
		last = now
	}})
	m.end(&r, r.RSSOf)
	if res != nil {
		r.Count, r.Elapsed = res.Resources, res.Elapsed
		r.Rate = rate(res.Resources, res.Elapsed)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Latency = ptr(hist.Summary())
	return r
}

// prepareIngestData generates the HTTP ingest data set: the seed after the
// main one, so that every resource is new to the server.
func (s *session) prepareIngestData(ctx context.Context, work string) (*dataset, error) {
	patients, err := patientsFor(s.cfg.IngestResources, s.cfg.Seed+1)
	if err != nil {
		return nil, err
	}
	return prepareData(ctx, filepath.Join(work, "data", fmt.Sprintf("seed%d-p%d", s.cfg.Seed+1, patients)), patients, s.cfg.Seed+1, 0, 0)
}

// token posts distinct RS384 assertions to /auth/token: each is verified,
// its jti recorded, an access token signed. The assertions are signed on
// every core before the clock starts.
func (s *session) token(ctx context.Context) Result {
	r := Result{Scenario: ScenarioToken, What: "`POST /auth/token`, distinct RS384 assertions", Available: true,
		Concurrency: s.cfg.Concurrency, Unit: "tokens", LatencyOf: "request"}
	warm := min(s.cfg.TokenAssertions/10, 2000)
	s.cfg.Logger.Info("signing assertions", "count", s.cfg.TokenAssertions+warm)
	forms, err := s.signForms(ctx, s.cfg.TokenAssertions+warm)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var used atomic.Int64
	do := func(ctx context.Context, _ int64) (string, error) {
		k := used.Add(1) - 1
		if k >= int64(len(forms)) {
			return "", errNoMoreWork
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL(), strings.NewReader(forms[k]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return send(s.hc, req, http.StatusOK)
	}
	// The warm-up spends its share of assertions, not a duration: the
	// measurement must keep the rest.
	warmDo := func(ctx context.Context, i int64) (string, error) {
		if used.Load() >= int64(warm) {
			return "", errNoMoreWork
		}
		return do(ctx, i)
	}
	if warm > 0 {
		runClosedLoop(ctx, s.cfg.Concurrency, 0, s.cfg.Warmup+time.Minute, warmDo, phaseHooks{})
	}
	return s.closedLoop(ctx, r, 0, do)
}

// signForms signs n token request bodies on every core.
func (s *session) signForms(ctx context.Context, n int) ([]string, error) {
	forms := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	a := client.Assertion{Key: s.key, ClientID: benchClientID, TokenURL: s.tokenURL()}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				jwt, err := a.Sign(time.Now())
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				forms[i] = url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
					"client_assertion": {jwt}, "scope": {"system/*.rs"}}.Encode()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("sign assertions: %w", firstErr)
	}
	return forms, ctx.Err()
}

// read fetches resources sampled from the data set with a bearer token.
func (s *session) read(ctx context.Context) Result {
	r := Result{Scenario: ScenarioRead, What: "`GET /fhir/{type}/{id}`, bearer token, ids sampled from the data", Available: true,
		Concurrency: s.cfg.Concurrency, Unit: "requests", LatencyOf: "request"}
	refs := s.data.Reads
	if len(refs) == 0 {
		r.Available, r.Note = false, "no data loaded"
		return r
	}
	base := s.fhirBase()
	do := func(ctx context.Context, i int64) (string, error) {
		ref := refs[i%int64(len(refs))]
		return s.get(ctx, base+"/"+ref.Type+"/"+ref.ID)
	}
	return s.closedLoop(ctx, r, s.cfg.Warmup, do)
}

// get sends a FHIR read with the read token.
func (s *session) get(ctx context.Context, u string) (string, error) {
	tok, err := s.readTS.Token()
	if err != nil {
		return "token", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "request", err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", fhir.MediaJSON)
	return send(s.hc, req, http.StatusOK)
}

// searchLOINC are lab and vital-sign codes of the seed's Observations.
var searchLOINC = []string{"4548-4", "2339-0", "8867-4", "8310-5", "29463-7", "8302-2", "718-7", "4544-3", "39156-5", "9279-1"}

// searchQueries returns the queries of a search scenario, cycled through by
// the workers. Every query asks for _count=20.
func (s *session) searchQueries(name string) ([]string, string) {
	var qs []string
	switch name {
	case ScenarioSearchToken:
		for _, c := range searchLOINC {
			qs = append(qs, "Observation?code="+url.QueryEscape("http://loinc.org|"+c)+"&_count=20")
		}
		return qs, "`Observation?code=http://loinc.org|…&_count=20` (10 LOINC codes)"
	case ScenarioSearchDate:
		// The seed's Observations fall in 2021 to 2025.
		for m := 0; m < 48; m++ {
			from := time.Date(2021, time.Month(6+m), 1, 0, 0, 0, 0, time.UTC)
			to := from.AddDate(0, 1, 0)
			qs = append(qs, "Observation?date=ge"+from.Format(time.DateOnly)+"&date=lt"+to.Format(time.DateOnly)+"&_count=20")
		}
		return qs, "`Observation?date=geYYYY-MM-01&date=lt…&_count=20` (48 months)"
	default:
		for _, mrn := range s.data.MRNs {
			qs = append(qs, "ExplanationOfBenefit?patient.identifier="+url.QueryEscape(mrnSystem+"|"+mrn)+"&_count=20")
		}
		return qs, "`ExplanationOfBenefit?patient.identifier=mrn|…&_count=20` (chained)"
	}
}

// search runs one search shape, after one probe request: a shape the
// server refuses with 400, 404, 405 or 501 is reported as not available.
func (s *session) search(ctx context.Context, name string) Result {
	qs, what := s.searchQueries(name)
	r := Result{Scenario: name, What: what, Available: true, Concurrency: s.cfg.Concurrency, Unit: "requests", LatencyOf: "request"}
	if len(qs) == 0 {
		r.Available, r.Note = false, "no data loaded"
		return r
	}
	base := s.fhirBase() + "/"
	if kind, err := s.get(ctx, base+qs[0]); err != nil {
		if notAvailable(kind) {
			r.Available, r.Note = false, "the server answered "+oneLine(err.Error())
			return r
		}
		r.Error = "probe: " + err.Error()
		return r
	}
	do := func(ctx context.Context, i int64) (string, error) {
		return s.get(ctx, base+qs[i%int64(len(qs))])
	}
	return s.closedLoop(ctx, r, s.cfg.Warmup, do)
}

// notAvailable tells whether a failure kind means the server does not offer
// the feature (yet) rather than failing at it.
func notAvailable(kind string) bool {
	switch kind {
	case "HTTP 400", "HTTP 404", "HTTP 405", "HTTP 501":
		return true
	}
	return false
}

// closedLoop runs do as a timed closed-loop scenario and fills r.
func (s *session) closedLoop(ctx context.Context, r Result, warmup time.Duration, do doFunc) Result {
	var m *measure
	var profile func() string
	res := runClosedLoop(ctx, s.cfg.Concurrency, warmup, s.cfg.Duration, do, phaseHooks{
		start: func() {
			profile = s.profile(ctx, r.Scenario, s.cfg.Duration)
			m = s.startMeasure(nil)
		},
		end: func() { m.end(&r, "server") },
	})
	r.Count, r.Elapsed = res.OK, res.Elapsed
	r.Rate = rate(res.OK, res.Elapsed)
	if res.OK > 0 {
		r.Latency = ptr(res.Hist.Summary())
	}
	if len(res.Failures) > 0 {
		r.Failures = res.Failures
		for _, v := range res.FirstError {
			if v != "" {
				r.FailureExample = v
				break
			}
		}
	}
	r.Profile = profile()
	return r
}

// export runs ExportRuns system-level exports with the SDK, each timed from
// kick-off until every file is on disk and its lines counted against the
// manifest.
func (s *session) export(ctx context.Context) Result {
	r := Result{Scenario: ScenarioExport, What: "system `$export` with client/bulk: kick-off → all NDJSON downloaded (status polls paced by the server's Retry-After)", Available: true,
		Concurrency: 1, Unit: "resources", LatencyOf: "export"}
	c := bulk.New(s.fhirBase(), s.readTS.Client())
	// The server's Retry-After paces polling; these only matter when it
	// sends none.
	c.Poll = bulk.PollPolicy{Initial: 250 * time.Millisecond, Min: 100 * time.Millisecond, Max: 2 * time.Second}
	var hist Histogram
	var files, polls int
	var resources, bytes int64
	var start, manifest time.Time
	var toManifest, lastTook time.Duration
	// The moment the manifest arrives splits an export into the server's
	// work (paced by its Retry-After) and the downloads.
	c.OnProgress = func(p bulk.Progress) {
		if p.Phase == bulk.PhaseComplete && manifest.IsZero() {
			manifest, polls = time.Now(), p.Polls
		}
	}
	m := s.startMeasure(nil)
	for i := range s.cfg.ExportRuns {
		dir := filepath.Join(s.work, fmt.Sprintf("export-%d", i))
		start, manifest = time.Now(), time.Time{}
		res, err := c.Export(ctx, bulk.Request{}, dir)
		took := time.Since(start)
		os.RemoveAll(dir)
		if err != nil {
			var he *client.HTTPError
			if i == 0 && errors.As(err, &he) && notAvailable(fmt.Sprintf("HTTP %d", he.StatusCode)) {
				m.end(&r, "server")
				r.Available, r.Note = false, "the server answered "+oneLine(err.Error())
				return r
			}
			r.Error = err.Error()
			break
		}
		hist.Record(took)
		files, resources, bytes = len(res.Files), res.Resources, res.Bytes
		if !manifest.IsZero() {
			toManifest, lastTook = manifest.Sub(start), took
		}
	}
	m.end(&r, "server")
	if hist.Count() == 0 {
		return r
	}
	// One export's figures; with several runs, the mean time.
	r.Count, r.Elapsed = resources, hist.Mean()
	r.Rate = rate(resources, r.Elapsed)
	r.Extra = fmt.Sprintf("%d files, %s of NDJSON", files, fmtBytes(bytes))
	if toManifest > 0 {
		r.Extra += fmt.Sprintf("; the manifest came after %s and %d status polls, the downloads took %s",
			fmtDuration(toManifest), polls, fmtDuration(lastTook-toManifest))
	}
	if hist.Count() > 1 {
		r.Latency = ptr(hist.Summary())
		r.Extra += fmt.Sprintf("; mean of %d exports", hist.Count())
	}
	return r
}

// ingest posts the ingest data set as transaction Bundles of PUT entries
// (loader.ToServer), IngestParallel at a time, timing each Bundle.
func (s *session) ingest(ctx context.Context, data *dataset) Result {
	r := Result{Scenario: ScenarioIngest,
		What:      fmt.Sprintf("transaction Bundles of %d PUTs over HTTP, %d in flight", s.cfg.IngestBatch, s.cfg.IngestParallel),
		Available: true, Concurrency: s.cfg.IngestParallel, Unit: "resources", LatencyOf: "Bundle"}
	if data == nil || data.Total == 0 {
		r.Available, r.Note = false, "no ingest data"
		return r
	}
	srcs, err := loader.Files(data.Dir)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	tt := &timingTransport{base: s.hc.Transport}
	ts, err := client.NewTokenSource(client.Config{ClientID: benchClientID, Key: s.key, Scopes: []string{"system/*.cruds"},
		TokenURL: s.tokenURL(), HTTPClient: &http.Client{Transport: tt}})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if _, err := ts.Token(); err != nil {
		r.Error = "token: " + err.Error()
		return r
	}
	tt.reset()
	m := s.startMeasure(nil)
	res, err := loader.ToServer(ctx, loader.Server{BaseURL: s.fhirBase(), HTTP: ts.Client(), Parallel: s.cfg.IngestParallel},
		srcs, loader.Options{BatchSize: s.cfg.IngestBatch})
	m.end(&r, "server")
	hist, failures := tt.result()
	if res != nil {
		r.Count, r.Elapsed = res.Resources, res.Elapsed
		r.Rate = rate(res.Resources, res.Elapsed)
	}
	if hist.Count() > 0 {
		r.Latency = ptr(hist.Summary())
	}
	if len(failures) > 0 {
		r.Failures = failures
	}
	if err != nil {
		var he *client.HTTPError
		if errors.As(err, &he) && notAvailable(fmt.Sprintf("HTTP %d", he.StatusCode)) && r.Count == 0 {
			r.Available, r.Note = false, "the server answered "+oneLine(err.Error())
			return r
		}
		r.Error = err.Error()
	}
	return r
}

// timingTransport records the latency of every successful Bundle POST
// (token requests to /auth/token are left out) and counts failures by
// status.
type timingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	hist Histogram
	fail map[string]int64
}

func (t *timingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := t.base.RoundTrip(req)
	if req.Method != http.MethodPost || strings.HasSuffix(req.URL.Path, "/auth/token") {
		return resp, err
	}
	// The server answers a transaction once it has committed it; reading
	// the small response Bundle is not timed.
	lat := time.Since(t0)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
		t.count("transport")
	case resp.StatusCode != http.StatusOK:
		t.count(fmt.Sprintf("HTTP %d", resp.StatusCode))
	default:
		t.hist.Record(lat)
	}
	return resp, err
}

func (t *timingTransport) count(kind string) {
	if t.fail == nil {
		t.fail = map[string]int64{}
	}
	t.fail[kind]++
}

func (t *timingTransport) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hist, t.fail = Histogram{}, nil
}

func (t *timingTransport) result() (*Histogram, map[string]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hist
	return &h, t.fail
}

// rate is n per second of d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ptr[T any](v T) *T { return &v }
