package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// lockedBuffer is a bytes.Buffer for a server writing while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDemo starts a --demo server without a root secret on dbURL with
// dataDir, and returns it with what it printed.
func startDemo(t *testing.T, dbURL, dataDir string) (*ts.Server, string) {
	t.Helper()
	out := &lockedBuffer{}
	s := ts.Start(t, dbURL, fastExport, func(c *app.Config) {
		c.Demo, c.DataDir, c.RootSecret, c.Stdout = true, dataDir, "", out
	})
	return s, out.String()
}

// versions counts every stored version, per type.
func versions(t *testing.T, st store.ResourceStore) map[string]int {
	t.Helper()
	out := map[string]int{}
	q := store.HistoryQuery{Count: 1000}
	for {
		page, err := st.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			out[v.Type]++
		}
		if page.Next == nil {
			return out
		}
		q.After = page.Next
	}
}

// hintCommand finds the printed command line that starts with prefix.
func hintCommand(t *testing.T, hints, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(hints, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %q command in\n%s", prefix, hints)
	return ""
}

func TestDemo(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		dbURL, dataDir := newURL(t), t.TempDir()
		s, hints := startDemo(t, dbURL, dataDir)

		// The key pair, as keygen writes it.
		keyDir := filepath.Join(dataDir, app.DemoKeyDir)
		keyPath := filepath.Join(keyDir, "private.pem")
		fi, err := os.Stat(keyPath)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("private.pem: %v, mode %v", err, fi.Mode().Perm())
		}
		pemBytes, _ := os.ReadFile(keyPath)
		var set client.JWKS
		raw, _ := os.ReadFile(filepath.Join(keyDir, "jwks.json"))
		if json.Unmarshal(raw, &set) != nil || len(set.Keys) != 1 || set.Keys[0].IsPrivate() || set.Keys[0].Alg != client.ES384 {
			t.Fatalf("jwks.json = %s", raw)
		}

		// The client and its policy, stored as the admin API stores them.
		rec, err := s.Store().GetClient(context.Background(), app.DemoClientID)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		json.Unmarshal(rec.Body, &c)
		if c["id"] != "demo" || c["active"] != true || len(c["scope"].([]any)) != 1 || c["scope"].([]any)[0] != "system/*.rs" ||
			!strings.Contains(string(rec.Body), set.Keys[0].Kid) || rec.SecretHash != "" {
			t.Fatalf("client %s", rec.Body)
		}
		pol, err := s.Store().GetPolicy(context.Background(), app.DemoPolicyID)
		if err != nil || !strings.Contains(string(pol.Body), `"engine":"allow"`) || !strings.Contains(string(pol.Body), `"id":"demo"`) {
			t.Fatalf("policy %v: %s", err, pol.Body)
		}

		// The data set, once.
		want, _ := seed.Counts(seed.Options{Patients: app.DemoPatients, Seed: seed.DefaultSeed})
		got := versions(t, s.Store())
		for typ, n := range want {
			if got[typ] != n {
				t.Errorf("%s: %d stored, %d in the data set", typ, got[typ], n)
			}
		}

		// The hints, copy-paste ready.
		abs, _ := filepath.Abs(keyPath)
		g := seed.Groups(seed.DefaultSeed)[0]
		wantToken := "fhirgate token --server " + s.URL + "/fhir --client-id demo --key " + abs + ` --scope "system/*.rs"`
		wantExport := "fhirgate export --server " + s.URL + "/fhir --client-id demo --key " + abs + " --group " + g.ID + " --out ./export"
		if hintCommand(t, hints, "fhirgate token") != wantToken || hintCommand(t, hints, "fhirgate export") != wantExport {
			t.Fatalf("hints:\n%s\nwant\n%s\n%s", hints, wantToken, wantExport)
		}

		// What they say works: a token, and the Group export.
		key, err := client.LoadKeyFile(abs, "")
		if err != nil {
			t.Fatal(err)
		}
		src, err := client.NewTokenSource(client.Config{ClientID: "demo", Key: key, Scopes: []string{"system/*.rs"}, FHIRBaseURL: s.URL + "/fhir"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Refresh(context.Background()); err != nil {
			t.Fatalf("token for the demo client: %v", err)
		}
		res, err := bulk.New(s.URL+"/fhir", src.Client()).Export(context.Background(), bulk.Request{GroupID: g.ID}, t.TempDir())
		if err != nil {
			t.Fatalf("export of the demo Group: %v", err)
		}
		if res.Resources == 0 || len(res.Files) == 0 {
			t.Fatalf("export %+v", res)
		}

		// A restart prints the same and reloads nothing.
		s.Stop()
		first := s.URL
		s, again := startDemo(t, dbURL, dataDir)
		if again = strings.ReplaceAll(again, s.URL, first); again != hints { // a new port each start
			t.Fatalf("second start printed\n%s\nfirst\n%s", again, hints)
		}
		if after, _ := os.ReadFile(keyPath); !bytes.Equal(after, pemBytes) {
			t.Fatal("the demo key changed on restart")
		}
		if n := versions(t, s.Store()); !equalCounts(n, got) {
			t.Fatalf("versions after restart %v, before %v", n, got)
		}
		if strings.Contains(s.Logs.String(), "demo: loading") || strings.Contains(s.Logs.String(), "demo: registered") {
			t.Fatalf("the restart loaded or registered again:\n%s", s.Logs.String())
		}

		// Without its key files, the demo client gets a new key; the data
		// stays as it is.
		s.Stop()
		os.RemoveAll(keyDir)
		s, _ = startDemo(t, dbURL, dataDir)
		newPEM, _ := os.ReadFile(keyPath)
		if bytes.Equal(newPEM, pemBytes) || !strings.Contains(s.Logs.String(), "demo: registered") {
			t.Fatal("no new key after the key files were removed")
		}
		old, err := client.NewTokenSource(client.Config{ClientID: "demo", Key: key, Scopes: []string{"system/*.rs"}, FHIRBaseURL: s.URL + "/fhir"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("the old key: %v", err)
		}
		if n := versions(t, s.Store()); !equalCounts(n, got) {
			t.Fatalf("versions after a new key %v, before %v", n, got)
		}
	})
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDemoHintsQuote(t *testing.T) {
	h := app.DemoHints("http://h/fhir", "/tmp/my keys/private.pem", seed.PlanGroup{ID: "g1", Plan: "P", Payer: "Q"})
	if !regexp.MustCompile(`--key '/tmp/my keys/private.pem' --group g1 --out`).MatchString(h) {
		t.Fatalf("a path with a space is not quoted:\n%s", h)
	}
}
