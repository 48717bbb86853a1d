package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// harness is an export Service on a real database and local storage,
// served over loopback HTTP with every caller authenticated as root (the
// authentication itself is httpapi's, tested there).
type harness struct {
	svc  *Service
	st   *sqlstore.Store
	srv  *httptest.Server
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// startHarness stores n Patients and n Observations, then starts the
// service and its runner; mod adjusts the configuration (st is the
// database, for wrappers).
func startHarness(t *testing.T, dbURL string, n int, mod func(c *Config, st *sqlstore.Store)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			for _, body := range []string{
				fmt.Sprintf(`{"resourceType":"Patient","id":"p%d"}`, i),
				fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p%d"}}`, i, i),
			} {
				r, err := resource.Parse([]byte(body))
				if err != nil {
					return err
				}
				if _, err := tx.Create(ctx, r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{st: st, logs: &syncBuffer{}}
	mux := http.NewServeMux()
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	dir := t.TempDir()
	local, err := NewLocalStorage(filepath.Join(dir, "exports"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, BaseURL: h.srv.URL, Storage: local, SpoolDir: filepath.Join(dir, "exports", ".spool"),
		PollInterval: time.Millisecond, IdleWait: 20 * time.Millisecond, Lease: 10 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(h.logs, nil))}
	if mod != nil {
		mod(&cfg, st)
	}
	h.svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root := func(r *http.Request) *http.Request {
		return r.WithContext(authz.WithPrincipal(r.Context(), &authz.Principal{ClientID: "root", Root: true, Method: "basic"}))
	}
	h.svc.authenticate = func(r *http.Request) (*http.Request, error) { return root(r), nil }
	kick := h.svc.kickoffHandler(LevelSystem)
	mux.HandleFunc("/fhir/$export", func(w http.ResponseWriter, r *http.Request) { kick(w, root(r), "", "") })
	h.svc.Mount(mux)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.svc.Run(runCtx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// kickoff starts a system export and returns its status URL.
func (h *harness) kickoff(t *testing.T, query string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/fhir/$export"+query, nil)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Location") == "" {
		t.Fatalf("kick-off: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("Content-Location")
}

// await polls the status URL until it answers something else than 202
// and returns that response and its body.
func (h *harness) await(t *testing.T, statusURL string) (*http.Response, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(statusURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusTooManyRequests:
			return resp, b
		case time.Now().After(deadline):
			t.Fatalf("export still running after 30s: %d %s", resp.StatusCode, resp.Header.Get("X-Progress"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failingStorage is a storage backend whose writes fail, as a full disk
// or an unreachable bucket would.
type failingStorage struct {
	Storage
}

func (failingStorage) Put(context.Context, string, string) error {
	return fmt.Errorf("put: no space left on device")
}

// TestFailedExportStatus: when a task fails for good, the job is marked
// failed and a status poll answers 500 with an OperationOutcome
// (export.html "Response - Error Status": 4XX or 5XX with an
// OperationOutcome), whose diagnostics name the failed work without the
// internal error, which goes to the server log.
func TestFailedExportStatus(t *testing.T) {
	eachDB(t, func(t *testing.T, dbURL string) {
		h := startHarness(t, dbURL, 3, func(c *Config, _ *sqlstore.Store) {
			c.Storage = failingStorage{c.Storage}
		})
		resp, body := h.await(t, h.kickoff(t, ""))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status of a failed export: %d %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		var o struct {
			ResourceType string
			Issue        []struct{ Severity, Code, Diagnostics string }
		}
		if err := json.Unmarshal(body, &o); err != nil || o.ResourceType != "OperationOutcome" || len(o.Issue) != 1 {
			t.Fatalf("body is not an OperationOutcome with one issue: %v %s", err, body)
		}
		want := "the export failed: reading the snapshot failed; see the server log"
		if is := o.Issue[0]; is.Severity != "fatal" || is.Code != "exception" || is.Diagnostics != want {
			t.Fatalf("issue %+v, want fatal/exception %q", is, want)
		}
		if logs := h.logs.String(); !strings.Contains(logs, "no space left on device") {
			t.Fatalf("the cause is not in the log:\n%s", logs)
		}
		// It stays failed: the next poll answers the same.
		if resp, _ := h.await(t, resp.Request.URL.String()); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("second poll: %d", resp.StatusCode)
		}
	})
}

// eachDB runs fn once per database backend under test.
func eachDB(t *testing.T, fn func(t *testing.T, dbURL string)) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		fn(t, newURL(t))
	})
}
