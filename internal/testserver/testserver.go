// Package testserver starts a complete fhirgate server (app.App on a real
// loopback listener and a real database) for end-to-end tests, and gives
// them a small HTTP client with FHIR defaults.
package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/logctx"
)

// RootSecret is the root secret of test servers.
const RootSecret = "test-root-secret"

// Server is a running test server.
type Server struct {
	*app.App
	URL  string // where the server listens (the public base URL unless BaseURL is set)
	Logs *SyncBuffer
	t    testing.TB
	stop func()
}

// Stop shuts the server down as SIGTERM would and closes its store; the
// test can then start another server on the same database.
func (s *Server) Stop() { s.stop() }

// SyncBuffer is a goroutine-safe buffer that collects log output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs a server on dbURL until the test ends. mod may adjust the
// configuration before start.
func Start(t testing.TB, dbURL string, mod ...func(*app.Config)) *Server {
	t.Helper()
	logs := &SyncBuffer{}
	cfg := app.Config{
		Addr:       "127.0.0.1:0",
		DB:         dbURL,
		DataDir:    t.TempDir(),
		RootSecret: RootSecret,
		Logger:     slog.New(logctx.NewHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	for _, m := range mod {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("server did not stop")
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	return &Server{App: a, URL: "http://" + a.Addr(), Logs: logs, t: t, stop: stop}
}

// Response is a read HTTP response.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into a generic map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Req describes a request.
type Req struct {
	Method, Path string
	Body         string
	Header       map[string]string
	// Auth is "root" (default), "none", or a full Authorization value.
	Auth string
}

// Do sends a request to the server; Path is relative to the base URL.
func (s *Server) Do(r Req) *Response {
	s.t.Helper()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequest(r.Method, s.URL+r.Path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	switch r.Auth {
	case "", "root":
		req.SetBasicAuth("root", RootSecret)
	case "none":
	default:
		req.Header.Set("Authorization", r.Auth)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return &Response{Response: resp, Body: b}
}

// Expect fails the test unless the response has the status.
func (r *Response) Expect(t testing.TB, status int) *Response {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d\n%s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.Body)
	}
	return r
}

// Outcome checks that the body is an OperationOutcome and returns its first
// diagnostics.
func (r *Response) Outcome(t testing.TB) string {
	t.Helper()
	m := r.JSON(t)
	if m["resourceType"] != "OperationOutcome" {
		t.Fatalf("body is not an OperationOutcome: %s", r.Body)
	}
	issues, _ := m["issue"].([]any)
	if len(issues) == 0 {
		t.Fatalf("OperationOutcome without issues: %s", r.Body)
	}
	d, _ := issues[0].(map[string]any)["diagnostics"].(string)
	return d
}
