package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/httpapi"
	"github.com/fhirgate/fhirgate/internal/logctx"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

func newServer(t *testing.T, logs *bytes.Buffer, mount ...func(*http.ServeMux)) (*httptest.Server, *sqlstore.Store) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), testdb.SQLiteURL(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(logctx.NewHandler(slog.NewJSONHandler(logs, nil)))
	svc := fhirapi.New(fhirapi.Config{Store: st, BaseURL: "http://fhirgate.test", Logger: log})
	h := httpapi.New(httpapi.Config{FHIR: svc, Store: st, RootSecret: "r", Logger: log, Mount: mount})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, st
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("root", "r")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestPanicIsContained: a panicking handler answers 500 with an
// OperationOutcome that holds no internals; the log has the panic and the
// request id.
func TestPanicIsContained(t *testing.T) {
	var logs bytes.Buffer
	srv, _ := newServer(t, &logs, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("secret internal detail") })
	})
	resp, body := get(t, srv.URL+"/boom")
	if resp.StatusCode != 500 || !strings.Contains(body, `"resourceType":"OperationOutcome"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if strings.Contains(body, "secret internal detail") || strings.Contains(body, "goroutine") {
		t.Fatalf("500 leaks internals: %s", body)
	}
	id := resp.Header.Get("X-Request-Id")
	if !strings.Contains(logs.String(), "secret internal detail") || !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
		t.Fatalf("log lacks the panic or its request id %s:\n%s", id, logs.String())
	}
}

// TestInternalErrorHidden: a database failure answers 500 without its text.
func TestInternalErrorHidden(t *testing.T) {
	var logs bytes.Buffer
	srv, st := newServer(t, &logs)
	st.Close()
	resp, body := get(t, srv.URL+"/fhir/Patient/x")
	if resp.StatusCode != 500 || !strings.Contains(body, "internal error") || strings.Contains(body, "sql") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "request failed") || !strings.Contains(logs.String(), resp.Header.Get("X-Request-Id")) {
		t.Fatalf("the failure is not logged with its request id:\n%s", logs.String())
	}
	resp, _ = get(t, srv.URL+"/health")
	if resp.StatusCode != 503 {
		t.Fatalf("/health with a closed database: %d, want 503", resp.StatusCode)
	}
}
