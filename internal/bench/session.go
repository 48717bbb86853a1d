package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/client"
)

// benchClientID is the backend client the harness registers.
const benchClientID = "fhirgate-bench"

// session is one size's run against one server.
type session struct {
	cfg     Config
	work    string // this size's directory
	size    int
	data    *dataset
	db      *database
	srv     *serverProcess
	secret  string
	hc      *http.Client
	key     *client.Key
	readTS  *client.TokenSource // system/*.rs
	writeTS *client.TokenSource // system/*.cruds
}

// runSize runs every scenario at one data set size.
func runSize(ctx context.Context, cfg Config, work string, size int) (*SizeRun, string, error) {
	log := cfg.Logger
	run := &SizeRun{Requested: size}
	patients, err := patientsFor(size, cfg.Seed)
	if err != nil {
		return nil, "", err
	}
	run.Patients = patients
	t0 := time.Now()
	log.Info("preparing data", "resources", size, "patients", patients)
	data, err := prepareData(ctx, filepath.Join(work, "data", fmt.Sprintf("seed%d-p%d", cfg.Seed, patients)), patients, cfg.Seed, cfg.ReadSample, 10_000)
	if err != nil {
		return nil, "", err
	}
	if !data.Reused {
		run.DataGeneration = time.Since(t0)
	}
	run.Resources = data.Total
	log.Info("data ready", "resources", data.Total, "reused", data.Reused, "took", time.Since(t0).Round(time.Millisecond))

	dir := filepath.Join(work, fmt.Sprintf("run-%d", data.Total))
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	db, err := prepareDatabase(ctx, cfg.DB, dir)
	if err != nil {
		return nil, "", err
	}
	if !cfg.Keep {
		defer func() {
			if err := db.Drop(context.WithoutCancel(ctx)); err != nil {
				log.Warn("could not drop the run's database", "err", err)
			}
		}()
	}
	s := &session{cfg: cfg, work: dir, size: data.Total, data: data, db: db, secret: randomSecret(), hc: loadClient(cfg.Concurrency)}
	defer s.hc.CloseIdleConnections()

	// The load scenario is the data preparation itself: it runs whether
	// or not it is reported, since the other scenarios need the data.
	load := s.loadDB(ctx)
	load.Target = targetFor(ScenarioLoad, db.Backend, data.Total)
	load.judge()
	log.Info("scenario done", "scenario", ScenarioLoad, "verdict", load.Verdict, "rate", fmt.Sprintf("%.0f", load.Rate), "error", load.Error)
	if has(cfg.Scenarios, ScenarioLoad) {
		run.Results = append(run.Results, load)
	}
	if load.Error != "" {
		return run, db.Version, fmt.Errorf("bench: loading the data failed: %s", load.Error)
	}
	// The HTTP ingest data set is generated before the server starts, so
	// that generating it competes with nothing measured.
	var ingestData *dataset
	if has(cfg.Scenarios, ScenarioIngest) {
		ingestData, err = s.prepareIngestData(ctx, work)
		if err != nil {
			return run, db.Version, err
		}
	}

	log.Info("starting the server", "db", db.Backend)
	s.srv, err = startServer(ctx, serverOptions{
		Argv: cfg.ServerArgv, Env: cfg.ServerEnv, Extra: cfg.ServeArgs, DB: db.URL,
		DataDir: filepath.Join(dir, "server"), RootSecret: s.secret, LogPath: filepath.Join(dir, "server.log"),
	})
	if err != nil {
		return run, db.Version, err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		run.ServerPeakRSS = s.srv.mem.Peak()
		log.Info("stopping the server (SIGTERM)")
		return s.srv.stop(time.Minute)
	}
	defer stop()
	if err := s.register(ctx); err != nil {
		return run, db.Version, err
	}
	for _, name := range cfg.Scenarios {
		if ctx.Err() != nil {
			return run, db.Version, ctx.Err()
		}
		var r Result
		switch name {
		case ScenarioLoad:
			continue
		case ScenarioToken:
			r = s.token(ctx)
		case ScenarioRead:
			r = s.read(ctx)
		case ScenarioSearchToken, ScenarioSearchDate, ScenarioSearchChain:
			r = s.search(ctx, name)
		case ScenarioExport:
			r = s.export(ctx)
		case ScenarioIngest:
			r = s.ingest(ctx, ingestData)
		}
		if ctx.Err() != nil {
			r.Error = "interrupted: " + ctx.Err().Error()
		}
		r.Target = targetFor(name, db.Backend, data.Total)
		r.judge()
		log.Info("scenario done", "scenario", name, "verdict", r.Verdict, "rate", fmt.Sprintf("%.0f", r.Rate),
			"p99", latencyP99(r.Latency), "note", r.Note, "error", r.Error)
		run.Results = append(run.Results, r)
		if ctx.Err() != nil {
			return run, db.Version, ctx.Err()
		}
	}
	if err := stop(); err != nil {
		return run, db.Version, err
	}
	return run, db.Version, nil
}

func latencyP99(l *Latency) string {
	if l == nil {
		return ""
	}
	return fmtDuration(l.P99)
}

// register makes the harness's backend client: an RS384 key registered
// inline (CONTRACT.md: "jwks" as an inline alternative to jwks_uri) with an
// allow AccessPolicy, and token sources for reading and writing.
func (s *session) register(ctx context.Context) error {
	key, err := client.GenerateKey(client.RS384, 2048)
	if err != nil {
		return err
	}
	s.key = key
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	body := fmt.Sprintf(`{"type":"bulk-api-client","active":true,
	  "auth":{"client_credentials":{"client_assertion_types":["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
	    "access_token_expiration":300,"token_format":"jwt"}},
	  "scope":["system/*.rs","system/*.read","system/*.cruds"],"jwks":%s,"grant_types":["client_credentials"]}`, jwks)
	if err := s.admin(ctx, "/Client/"+benchClientID, body); err != nil {
		return err
	}
	if err := s.admin(ctx, "/AccessPolicy/"+benchClientID+"-allow",
		`{"engine":"allow","link":[{"resourceType":"Client","id":"`+benchClientID+`"}]}`); err != nil {
		return err
	}
	newTS := func(scope string) (*client.TokenSource, error) {
		return client.NewTokenSource(client.Config{ClientID: benchClientID, Key: key, Scopes: []string{scope},
			TokenURL: s.tokenURL(), HTTPClient: s.hc})
	}
	if s.readTS, err = newTS("system/*.rs"); err != nil {
		return err
	}
	if s.writeTS, err = newTS("system/*.cruds"); err != nil {
		return err
	}
	if _, err := s.readTS.Token(); err != nil {
		return fmt.Errorf("bench: first token: %w", err)
	}
	return nil
}

// admin PUTs a resource of the admin API as root.
func (s *session) admin(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.srv.baseURL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.SetBasicAuth("root", s.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("bench: PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("bench: PUT %s: %d %s", path, resp.StatusCode, oneLine(string(b)))
	}
	return nil
}

func (s *session) tokenURL() string { return s.srv.baseURL + "/auth/token" }
func (s *session) fhirBase() string { return s.srv.baseURL + "/fhir" }

// measure wraps a measurement: the server's peak RSS window, and the CPU
// of both processes.
type measure struct {
	s           *session
	rss         *RSSMonitor
	t0          time.Time
	srv0, self0 float64
	startRSS    int64
}

// startMeasure begins a measurement of the server (or, with rss set, of
// another process such as the harness itself).
func (s *session) startMeasure(rss *RSSMonitor) *measure {
	m := &measure{s: s, rss: rss}
	if m.rss == nil && s.srv != nil {
		m.rss = s.srv.mem
	}
	if m.rss != nil {
		m.rss.StartWindow()
		m.startRSS = m.rss.Current()
	}
	if s.srv != nil {
		m.srv0 = s.srv.cpuSeconds()
	}
	m.self0 = procCPUSeconds("self")
	m.t0 = time.Now()
	return m
}

// end fills r's RSS and CPU figures.
func (m *measure) end(r *Result, rssOf string) {
	wall := time.Since(m.t0).Seconds()
	if m.rss != nil {
		r.PeakRSS, r.StartRSS = m.rss.EndWindow(), m.startRSS
		r.RSSOf = rssOf
	}
	if wall > 0 {
		if m.s.srv != nil {
			r.CPUServer = (m.s.srv.cpuSeconds() - m.srv0) / wall
		}
		r.CPUHarness = (procCPUSeconds("self") - m.self0) / wall
	}
}

// profile fetches a CPU profile of the server for d into the profile
// directory, in the background; wait for it with the returned function.
func (s *session) profile(ctx context.Context, name string, d time.Duration) func() string {
	if s.cfg.ServerProfileDir == "" || d < time.Second {
		return func() string { return "" }
	}
	path := filepath.Join(s.cfg.ServerProfileDir, fmt.Sprintf("%s-%s-%d.pprof", s.db.Backend, name, s.size))
	done := make(chan string, 1)
	go func() {
		secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.srv.baseURL+"/debug/pprof/profile?seconds="+secs, nil)
		req.SetBasicAuth("root", s.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.cfg.Logger.Warn("server CPU profile failed", "scenario", name, "err", err)
			done <- ""
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			s.cfg.Logger.Warn("server CPU profile refused", "scenario", name, "status", resp.StatusCode)
			done <- ""
			return
		}
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			s.cfg.Logger.Warn("server CPU profile not written", "scenario", name, "err", err)
			done <- ""
			return
		}
		done <- path
	}()
	return func() string { return <-done }
}
