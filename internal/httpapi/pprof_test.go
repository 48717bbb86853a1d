package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/httpapi"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// clientAuth is a hand-written Authenticator at the seam httpapi exposes:
// HTTP Basic "svc:pw" is a registered client (not root); everything else
// is refused.
type clientAuth struct{}

func (clientAuth) Bearer(context.Context, string) (*authz.Principal, error) {
	return nil, fhir.Unauthorized("invalid access token")
}

func (clientAuth) Basic(_ context.Context, id, secret string) (*authz.Principal, error) {
	if id == "svc" && secret == "pw" {
		return &authz.Principal{ClientID: "svc", Method: "basic"}, nil
	}
	return nil, fhir.Unauthorized("invalid client credentials")
}

func pprofServer(t *testing.T, rootSecret string) *httptest.Server {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), testdb.SQLiteURL(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := fhirapi.New(fhirapi.Config{Store: st, BaseURL: "http://fhirgate.test", Logger: log})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{FHIR: svc, Store: st, RootSecret: rootSecret,
		Authenticator: clientAuth{}, Logger: log}))
	t.Cleanup(srv.Close)
	return srv
}

// pprofGet requests path with Basic user:pass (none when user is empty)
// and returns the status and body.
func pprofGet(t *testing.T, srv *httptest.Server, method, path, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPprofRefusesAllButRoot: every /debug/pprof route refuses callers
// other than root, with the admin API's errors, before any profile runs.
func TestPprofRefusesAllButRoot(t *testing.T) {
	srv := pprofServer(t, "r")
	noRoot := pprofServer(t, "")
	paths := []struct{ method, path string }{
		{"GET", "/debug/pprof/"},
		{"GET", "/debug/pprof/heap"},
		{"GET", "/debug/pprof/goroutine?debug=2"},
		{"GET", "/debug/pprof/cmdline"},
		{"GET", "/debug/pprof/profile?seconds=30"},
		{"GET", "/debug/pprof/symbol"},
		{"POST", "/debug/pprof/symbol"},
		{"GET", "/debug/pprof/trace?seconds=30"},
	}
	callers := []struct {
		name, user, pass string
		srv              *httptest.Server
		status           int
		diagnostics      string
	}{
		{"no credentials", "", "", srv, 401, "the admin API needs HTTP Basic credentials of root"},
		{"wrong root secret", "root", "guess", srv, 401, "invalid client credentials"},
		{"registered client", "svc", "pw", srv, 403, "only root may use the admin API"},
		{"root disabled", "", "", noRoot, 401, "the admin API is disabled: start fhirgate with --root-secret"},
		// Without a root secret even valid client credentials get 401, not
		// 403 (CONTRACT.md, --root-secret).
		{"root disabled, registered client", "svc", "pw", noRoot, 401, "the admin API is disabled: start fhirgate with --root-secret"},
		{"root disabled, root with a guess", "root", "", noRoot, 401, "the admin API is disabled: start fhirgate with --root-secret"},
	}
	for _, c := range callers {
		for _, p := range paths {
			t.Run(c.name+" "+p.method+" "+p.path, func(t *testing.T) {
				status, body := pprofGet(t, c.srv, p.method, p.path, c.user, c.pass)
				if status != c.status {
					t.Fatalf("status %d, want %d: %s", status, c.status, body)
				}
				var oo struct {
					ResourceType string `json:"resourceType"`
					Issue        []struct {
						Diagnostics string `json:"diagnostics"`
					} `json:"issue"`
				}
				if err := json.Unmarshal([]byte(body), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 {
					t.Fatalf("want one OperationOutcome issue, got %s", body)
				}
				if oo.Issue[0].Diagnostics != c.diagnostics {
					t.Fatalf("diagnostics %q, want %q", oo.Issue[0].Diagnostics, c.diagnostics)
				}
			})
		}
	}
}

// TestPprofServesRoot: root gets the index, named profiles and the command
// line.
func TestPprofServesRoot(t *testing.T) {
	srv := pprofServer(t, "r")
	for _, c := range []struct{ path, want string }{
		{"/debug/pprof/", "Types of profiles available"},
		{"/debug/pprof/heap?debug=1", "heap profile:"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/cmdline", ".test"},
		{"/debug/pprof/symbol", "num_symbols:"},
	} {
		t.Run(c.path, func(t *testing.T) {
			status, body := pprofGet(t, srv, "GET", c.path, "root", "r")
			if status != 200 || !strings.Contains(body, c.want) {
				t.Fatalf("status %d, want 200 with %q in: %.300s", status, c.want, body)
			}
		})
	}
	t.Run("CPU profile", func(t *testing.T) {
		status, body := pprofGet(t, srv, "GET", "/debug/pprof/profile?seconds=1", "root", "r")
		// A gzip-compressed profile.proto starts with the gzip magic.
		if status != 200 || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
			t.Fatalf("status %d, want 200 and a gzipped profile, got %d bytes", status, len(body))
		}
	})
}
