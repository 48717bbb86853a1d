package bulk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/client/smarttest"
)

var (
	keyOnce sync.Once
	theKey  *client.Key
)

func testKey(t testing.TB) *client.Key {
	keyOnce.Do(func() {
		k, err := client.GenerateKey(client.ES384, 0)
		if err != nil {
			t.Fatal(err)
		}
		theKey = k
	})
	return theKey
}

type env struct {
	srv *smarttest.Server
	ts  *client.TokenSource
	c   *bulk.Client
	dir string
}

// setup starts a server with Patient and Observation data and a bulk
// client that polls quickly.
func setup(t testing.TB, opts smarttest.Options) *env {
	t.Helper()
	key := testKey(t)
	srv := smarttest.New(t, opts)
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	srv.RegisterClient(smarttest.Client{ID: "c1", JWKS: jwks, Scopes: []string{"system/*.rs"}})
	srv.AddGroup("g1")
	srv.AddResources("Patient", `{"resourceType":"Patient","id":"p1"}`, `{"resourceType":"Patient","id":"p2"}`)
	srv.GenerateResources("Observation", 5, 100)
	ts, err := client.NewTokenSource(client.Config{ClientID: "c1", Key: key, Scopes: []string{"system/*.rs"},
		FHIRBaseURL: srv.FHIRBaseURL(), Now: opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := bulk.New(srv.FHIRBaseURL(), ts.Client())
	c.Poll = bulk.PollPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Min: 10 * time.Millisecond}
	return &env{srv: srv, ts: ts, c: c, dir: t.TempDir()}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestExportWritesFilesAndManifest(t *testing.T) {
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 2 })
	var phases []bulk.Phase
	e.c.OnProgress = func(p bulk.Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	res, err := e.c.Export(context.Background(), bulk.Request{}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resources != 7 || len(res.Files) != 2 || res.StatusURL == "" {
		t.Fatalf("result = %+v", res)
	}
	if got := readLines(t, filepath.Join(e.dir, "Patient.ndjson")); len(got) != 2 || got[1] != `{"resourceType":"Patient","id":"p2"}` {
		t.Errorf("Patient.ndjson = %q", got)
	}
	if got := readLines(t, filepath.Join(e.dir, "Observation.ndjson")); len(got) != 5 {
		t.Errorf("Observation.ndjson has %d lines", len(got))
	}
	var m bulk.Manifest
	raw, err := os.ReadFile(filepath.Join(e.dir, bulk.ManifestFileName))
	if err != nil || json.Unmarshal(raw, &m) != nil || len(m.Output) != 2 || !m.RequiresAccessToken {
		t.Fatalf("manifest.json: %v %s", err, raw)
	}
	if fi, _ := os.Stat(filepath.Join(e.dir, "Patient.ndjson")); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600 for health data", fi.Mode().Perm())
	}
	want := []bulk.Phase{bulk.PhaseWaiting, bulk.PhaseComplete, bulk.PhaseDownloading, bulk.PhaseDone}
	if !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	k := e.srv.Kickoffs()[0]
	if k.Method != "GET" || k.Path != "/fhir/$export" || k.Prefer != "respond-async" || k.Accept != "application/fhir+json" {
		t.Errorf("kick-off = %+v", k)
	}
	for _, f := range e.srv.FileRequests() {
		if !f.Authorization {
			t.Errorf("file %s fetched without the token though requiresAccessToken is true", f.Path)
		}
	}
}

func TestKickoffParameters(t *testing.T) {
	since := time.Date(2025, 6, 1, 8, 30, 0, 500_000_000, time.FixedZone("x", 3600))
	tests := []struct {
		name       string
		req        bulk.Request
		wantMethod string
		wantPath   string
		wantParams map[string][]string
	}{
		{
			name: "system GET with everything",
			req: bulk.Request{OutputFormat: "application/fhir+ndjson", Since: since,
				Types: []string{"Patient", "Observation"}, Elements: []string{"id", "Observation.code"},
				TypeFilters:           []string{"Observation?code=1,2", "Patient?active=true"},
				IncludeAssociatedData: []string{"LatestProvenanceResources"}},
			wantMethod: "GET", wantPath: "/fhir/$export",
			wantParams: map[string][]string{
				"_outputFormat": {"application/fhir+ndjson"}, "_since": {"2025-06-01T07:30:00.5Z"},
				"_type": {"Patient", "Observation"}, "_elements": {"id", "Observation.code"},
				"_typeFilter":           {"Observation?code=1,2", "Patient?active=true"},
				"includeAssociatedData": {"LatestProvenanceResources"},
			},
		},
		{
			name:       "patient level",
			req:        bulk.Request{Level: bulk.Patient, Types: []string{"Patient"}},
			wantMethod: "GET", wantPath: "/fhir/Patient/$export",
			wantParams: map[string][]string{"_type": {"Patient"}},
		},
		{
			name: "group POST with patients",
			req: bulk.Request{GroupID: "g1", Patients: []string{"Patient/p1", "Patient/p2"}, Since: since,
				Types: []string{"Patient"}, IncludeAssociatedData: []string{"_custom"}},
			wantMethod: "POST", wantPath: "/fhir/Group/g1/$export",
			wantParams: map[string][]string{"patient": {"Patient/p1", "Patient/p2"}, "_since": {"2025-06-01T07:30:00.5Z"},
				"_type": {"Patient"}, "includeAssociatedData": {"_custom"}},
		},
		{
			name:       "POST without patients",
			req:        bulk.Request{POST: true, Elements: []string{"id"}, TypeFilters: []string{"Patient?active=true"}},
			wantMethod: "POST", wantPath: "/fhir/$export",
			wantParams: map[string][]string{"_elements": {"id"}, "_typeFilter": {"Patient?active=true"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, smarttest.Options{})
			job, err := e.c.Kickoff(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(job.StatusURL, e.srv.URL+"/bulkstatus/") {
				t.Errorf("status URL %s", job.StatusURL)
			}
			k := e.srv.Kickoffs()[0]
			if k.Method != tt.wantMethod || k.Path != tt.wantPath || !reflect.DeepEqual(k.Params, tt.wantParams) {
				t.Errorf("kick-off %s %s %v\nwant %s %s %v", k.Method, k.Path, k.Params, tt.wantMethod, tt.wantPath, tt.wantParams)
			}
		})
	}
}

func TestKickoffRefusals(t *testing.T) {
	tests := []struct {
		name string
		req  bulk.Request
		want string
	}{
		{"patients at system level", bulk.Request{Patients: []string{"Patient/1"}}, "the patient parameter applies to patient and group exports only"},
		{"group without id", bulk.Request{Level: bulk.Group}, "a group export needs GroupID"},
		{"unknown level", bulk.Request{Level: "universe"}, `unknown level "universe"`},
		{"unknown group", bulk.Request{GroupID: "nope"}, "GET " + "{{URL}}/fhir/Group/nope/$export: 404 Not Found: Group/nope is not known"},
		{"bad type", bulk.Request{Types: []string{"Patinet"}}, `400 Bad Request: _type "Patinet" is not a resource type`},
		{"bad format", bulk.Request{OutputFormat: "text/csv"}, `_outputFormat "text/csv" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, smarttest.Options{})
			_, err := e.c.Kickoff(context.Background(), tt.req)
			want := strings.ReplaceAll(tt.want, "{{URL}}", e.srv.URL)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
}

func TestPollHonoursRetryAfter(t *testing.T) {
	t.Parallel() // waits out real Retry-After seconds
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 2; b.RetryAfter = "1" })
	var messages []string
	e.c.OnProgress = func(p bulk.Progress) {
		if p.Phase == bulk.PhaseWaiting {
			messages = append(messages, p.Message)
		}
	}
	if _, err := e.c.Export(context.Background(), bulk.Request{}, e.dir); err != nil {
		t.Fatal(err)
	}
	polls := e.srv.Polls()
	if len(polls) != 3 {
		t.Fatalf("%d polls, want 3", len(polls))
	}
	for i := 1; i < len(polls); i++ {
		if gap := polls[i].Sub(polls[i-1]); gap < 950*time.Millisecond {
			t.Errorf("poll %d came %v after the previous one; Retry-After said 1s", i, gap)
		}
	}
	if !reflect.DeepEqual(messages, []string{"poll 1 of 2", "poll 2 of 2"}) {
		t.Errorf("X-Progress messages %q", messages)
	}
}

func TestPollBacksOffWithoutRetryAfter(t *testing.T) {
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 6 })
	e.c.Poll = bulk.PollPolicy{Initial: 40 * time.Millisecond, Max: time.Second, Min: time.Millisecond}
	if _, err := e.c.Export(context.Background(), bulk.Request{}, e.dir); err != nil {
		t.Fatal(err)
	}
	polls := e.srv.Polls()
	first, last := polls[1].Sub(polls[0]), polls[6].Sub(polls[5])
	// Equal jitter keeps each wait within [base/2, base]; the base grows
	// 1.5 times per poll, so the sixth wait is at least 40ms*1.5^5/2 = 152ms.
	if first > 60*time.Millisecond || last < 150*time.Millisecond {
		t.Errorf("first wait %v, last wait %v: no exponential backoff", first, last)
	}
}

func TestPoll429SlowsDown(t *testing.T) {
	t.Parallel() // waits out real Retry-After seconds
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollThrottles = 2; b.RetryAfter = "1" })
	if _, err := e.c.Export(context.Background(), bulk.Request{}, e.dir); err != nil {
		t.Fatal(err)
	}
	polls := e.srv.Polls()
	if len(polls) != 3 {
		t.Fatalf("%d polls, want 2 throttled and 1 complete", len(polls))
	}
	for i := 1; i < len(polls); i++ {
		if gap := polls[i].Sub(polls[i-1]); gap < 950*time.Millisecond {
			t.Errorf("poll %d only %v after a 429 with Retry-After: 1", i, gap)
		}
	}
}

func TestKickoff429IsRetried(t *testing.T) {
	t.Parallel() // waits out real Retry-After seconds
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.KickoffThrottles = 2; b.KickoffRetryAfter = 1 })
	start := time.Now()
	if _, err := e.c.Export(context.Background(), bulk.Request{}, e.dir); err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.Kickoffs()); n != 3 {
		t.Errorf("%d kick-offs, want 3", n)
	}
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Errorf("done after %v; two Retry-After: 1 should take 2s", d)
	}
	e.c.Poll.KickoffAttempts = 1
	e.srv.Set(func(b *smarttest.Behavior) { b.KickoffThrottles = 1 })
	_, err := e.c.Kickoff(context.Background(), bulk.Request{})
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusTooManyRequests {
		t.Errorf("err = %v, want the 429 once attempts run out", err)
	}
}

func TestCancelSendsDelete(t *testing.T) {
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 1000 })
	ctx, cancel := context.WithCancel(context.Background())
	e.c.OnProgress = func(p bulk.Progress) {
		if p.Polls == 2 {
			cancel()
		}
	}
	_, err := e.c.Export(ctx, bulk.Request{}, e.dir)
	var ab *bulk.AbandonedError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ab) {
		t.Fatalf("err = %v, want a cancellation that deleted the job", err)
	}
	dels := e.srv.Deletes()
	if len(dels) != 1 || !strings.HasSuffix(ab.StatusURL, "/"+dels[0]) {
		t.Fatalf("deletes %v for job %s", dels, ab.StatusURL)
	}
	// The server now answers 404 for the job.
	_, err = e.c.Job(ab.StatusURL).Poll(context.Background())
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Errorf("poll after delete: %v", err)
	}
}

func TestMaxWaitDeletesJob(t *testing.T) {
	t.Parallel() // waits out real Retry-After seconds
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 1000; b.RetryAfter = "1" })
	e.c.Poll.MaxWait = 1500 * time.Millisecond
	_, err := e.c.Export(context.Background(), bulk.Request{}, e.dir)
	if !errors.Is(err, bulk.ErrMaxWait) || len(e.srv.Deletes()) != 1 {
		t.Fatalf("err = %v, deletes %v", err, e.srv.Deletes())
	}
}

func TestDownloads(t *testing.T) {
	tests := []struct {
		name     string
		behavior func(b *smarttest.Behavior)
		check    func(t *testing.T, reqs []smarttest.FileRequest)
	}{
		{"resume with Range", func(b *smarttest.Behavior) { b.DropAfter = 10_000 }, wantRange},
		{"resume when Range is ignored", func(b *smarttest.Behavior) { b.DropAfter = 10_000; b.IgnoreRange = true }, wantRange},
		{"gzip", func(b *smarttest.Behavior) { b.Gzip = true }, wantGzip},
		{"resume under gzip", func(b *smarttest.Behavior) { b.Gzip = true; b.DropAfter = 3000 }, func(t *testing.T, r []smarttest.FileRequest) {
			wantGzip(t, r)
			wantRange(t, r)
		}},
		{"resume a stalled download", func(b *smarttest.Behavior) { b.StallAfter = 5000 }, wantRange},
		{"several files per type", func(b *smarttest.Behavior) { b.MaxLinesPerFile = 300 }, nil},
		{"capability URLs get no token", func(b *smarttest.Behavior) { b.PublicFiles = true }, func(t *testing.T, reqs []smarttest.FileRequest) {
			for _, r := range reqs {
				if r.Authorization {
					t.Errorf("token sent to capability URL %s", r.Path)
				}
			}
		}},
		{"token revoked before downloads", func(b *smarttest.Behavior) { b.RevokeOnManifest = true }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, smarttest.Options{})
			e.srv.GenerateResources("Condition", 1000, 150) // about 150 kB
			e.srv.Set(tt.behavior)
			e.c.IdleTimeout = 300 * time.Millisecond
			res, err := e.c.Export(context.Background(), bulk.Request{Types: []string{"Condition"}}, e.dir)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, f := range res.Files {
				lines = append(lines, readLines(t, f.Path)...)
			}
			if len(lines) != 1000 || res.Resources != 1000 {
				t.Fatalf("%d lines, %d resources; want 1000", len(lines), res.Resources)
			}
			for i, l := range lines {
				var r struct{ ID string }
				if json.Unmarshal([]byte(l), &r) != nil || r.ID != "Condition-"+strconv.Itoa(i) {
					t.Fatalf("line %d is %.60q", i, l)
				}
			}
			if tt.check != nil {
				tt.check(t, e.srv.FileRequests())
			}
			matches, _ := filepath.Glob(filepath.Join(e.dir, "*.part"))
			if len(matches) > 0 {
				t.Errorf("left over: %v", matches)
			}
		})
	}
}

func wantRange(t *testing.T, reqs []smarttest.FileRequest) {
	t.Helper()
	for _, r := range reqs {
		if strings.HasPrefix(r.Range, "bytes=") && r.Range != "bytes=0-" {
			return
		}
	}
	t.Errorf("no resuming Range request among %+v", reqs)
}

func wantGzip(t *testing.T, reqs []smarttest.FileRequest) {
	t.Helper()
	for _, r := range reqs {
		if r.AcceptEncoding != "gzip" {
			t.Errorf("request without Accept-Encoding: gzip: %+v", r)
		}
	}
}

func TestCountMismatch(t *testing.T) {
	e := setup(t, smarttest.Options{})
	e.srv.Set(func(b *smarttest.Behavior) { b.CountSkew = 1 })
	_, err := e.c.Export(context.Background(), bulk.Request{Types: []string{"Patient"}}, e.dir)
	var ce *bulk.CountError
	if !errors.As(err, &ce) || ce.Want != 3 || ce.Got != 2 || ce.Type != "Patient" {
		t.Fatalf("err = %v, want a CountError 3 vs 2", err)
	}
	if _, err := os.Stat(ce.Path + ".part"); err != nil {
		t.Errorf("the suspect file is not kept for inspection: %v", err)
	}
	if _, err := os.Stat(ce.Path); !os.IsNotExist(err) {
		t.Errorf("the suspect file was published under its final name")
	}
	if len(e.srv.Deletes()) != 0 {
		t.Error("a failed download must not delete the job: the files can be fetched again")
	}
}

func TestErrorFilesAreDownloaded(t *testing.T) {
	e := setup(t, smarttest.Options{})
	res, err := e.c.Export(context.Background(), bulk.Request{Types: []string{"Patient", "Encounter"}}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	got := readLines(t, filepath.Join(e.dir, "error.OperationOutcome.ndjson"))
	if len(got) != 1 || !strings.Contains(got[0], "no resources of type Encounter") || res.Resources != 2 {
		t.Errorf("error file %q, resources %d", got, res.Resources)
	}
}

func TestTokensRefreshDuringLongExport(t *testing.T) {
	t.Parallel() // waits out real Retry-After seconds
	e := setup(t, smarttest.Options{TokenLifetime: time.Second})
	e.srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 3; b.RetryAfter = "1" })
	if _, err := e.c.Export(context.Background(), bulk.Request{}, e.dir); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.TokenRequests(); n < 3 {
		t.Errorf("%d token requests over a 3 s export with 1 s tokens", n)
	}
}

// countingTransport measures how many file downloads are open at once.
type countingTransport struct {
	base      http.RoundTripper
	open, max atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.Contains(r.URL.Path, "/bulkfiles/") {
		return c.base.RoundTrip(r)
	}
	n := c.open.Add(1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	time.Sleep(20 * time.Millisecond)
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		c.open.Add(-1)
		return nil, err
	}
	resp.Body = &closeHook{ReadCloser: resp.Body, done: func() { c.open.Add(-1) }}
	return resp, nil
}

type closeHook struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (c *closeHook) Close() error {
	c.once.Do(c.done)
	return c.ReadCloser.Close()
}

func TestParallelDownloadsAreBounded(t *testing.T) {
	e := setup(t, smarttest.Options{})
	e.srv.GenerateResources("Condition", 200, 100)
	e.srv.Set(func(b *smarttest.Behavior) { b.MaxLinesPerFile = 10 })
	ct := &countingTransport{base: http.DefaultTransport}
	e.c.HTTP = &http.Client{Transport: e.ts.Transport(ct)}
	e.c.Parallel = 3
	res, err := e.c.Export(context.Background(), bulk.Request{Types: []string{"Condition"}}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 20 {
		t.Fatalf("%d files", len(res.Files))
	}
	if m := ct.max.Load(); m != 3 {
		t.Errorf("%d downloads at once, want exactly Parallel = 3", m)
	}
}

func TestDownloadErrorsHideCapabilityURLs(t *testing.T) {
	c := bulk.New("http://127.0.0.1:1/fhir", nil)
	c.Resumes = 1
	one := int64(1)
	m := &bulk.Manifest{Output: []bulk.OutputFile{{Type: "Patient", URL: "http://127.0.0.1:1/files/1?X-Amz-Signature=secret123", Count: &one}}}
	_, err := c.Download(context.Background(), m, t.TempDir())
	if err == nil || strings.Contains(err.Error(), "secret123") || !strings.Contains(err.Error(), "http://127.0.0.1:1/files/1?…") {
		t.Fatalf("err = %v", err)
	}
}
