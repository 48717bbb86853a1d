package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// seedDir writes the seed data set of n patients into a new directory.
func seedDir(t *testing.T, n int, gz bool) (string, map[string]int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "seed")
	counts, err := seed.WriteNDJSON(context.Background(), dir, seed.Options{Patients: n, Seed: seed.DefaultSeed}, gz)
	if err != nil {
		t.Fatal(err)
	}
	return dir, counts
}

// liveCounts counts the current versions per type in a store.
func liveCounts(t *testing.T, st store.ResourceStore) map[string]int {
	t.Helper()
	seen := map[string]bool{}
	out := map[string]int{}
	q := store.HistoryQuery{Count: 1000}
	for {
		page, err := st.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			if k := v.Type + "/" + v.ID; !seen[k] {
				seen[k] = true
				if !v.Deleted {
					out[v.Type]++
				}
			}
		}
		if page.Next == nil {
			return out
		}
		q.After = page.Next
	}
}

func sameCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("types %v, want %v", got, want)
	}
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("%s: %d, want %d", typ, got[typ], n)
		}
	}
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

func openDB(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestLoadDB(t *testing.T) {
	unsetClientEnv(t)
	dir, counts := seedDir(t, 12, true)
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		url := newURL(t)
		out, stderr, err := runClientCLI(t, context.Background(), "load", "--db", url, "--batch", "50", dir)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(counts)+1 {
			t.Fatalf("summary:\n%s", out)
		}
		for typ, n := range counts {
			re := regexp.MustCompile(regexp.QuoteMeta(filepath.Join(dir, typ+".ndjson.gz")) + ` +` + fmt.Sprint(n) + ` resources +\d+\.\d\ds +\d+ resources/s\n`)
			if !re.MatchString(out) {
				t.Errorf("no line for %s (%d) in\n%s", typ, n, out)
			}
		}
		last := lines[len(lines)-1]
		want := fmt.Sprintf("load: loaded %d resources from %d files (", total(counts), len(counts))
		if !strings.HasPrefix(last, want) || !strings.Contains(last, " resources/s") {
			t.Errorf("last line %q, want it to start %q", last, want)
		}
		// Not a terminal: progress as log lines, one per file.
		if n := strings.Count(stderr, `msg="loaded file"`); n != len(counts) {
			t.Errorf("%d file lines on stderr:\n%s", n, stderr)
		}
		sameCounts(t, liveCounts(t, openDB(t, url)), counts)
	})
}

func TestRedactDB(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x?sslmode=disable": "postgres://u@db:5432/x?sslmode=disable",
		"postgres://u@db/x":                             "postgres://u@db/x",
		"sqlite:./a.db":                                 "sqlite:./a.db",
		"postgres://u:p@ss@db/x":                        "postgres://u@db/x",
	} {
		if got := redactDB(in); got != want {
			t.Errorf("redactDB(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadRefusals(t *testing.T) {
	unsetClientEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte(`{"resourceType":"Patient","id":"a"}
{"resourceType":"Patient","id":"b"}
{"resourceType":"Patient","id":"c"}
{"resourceType":"Patient"}
{"resourceType":"Patient","id":"d"}
`), 0o644)
	db := testdb.SQLiteURL(t)
	missing := filepath.Join(dir, "missing.ndjson")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no files", []string{"load", "--db", db}, 2,
			"load: name the NDJSON files or directories to load, e.g. fhirgate load --db sqlite:./fhirgate-data/fhirgate.db ./seed-data"},
		{"no destination", []string{"load", bad}, 2,
			"load: give --db URL to load straight into a database, or --server BASE with --client-id and --key to load over the FHIR API"},
		{"both destinations", []string{"load", "--db", db, "--server", "http://x/fhir", bad}, 2,
			"load: give --db (straight into a database) or --server (over the FHIR API), not both"},
		{"bundle type", []string{"load", "--server", "http://x/fhir", "--bundle", "collection", bad}, 2,
			`load: --bundle must be transaction or batch, got "collection"`},
		{"parallel", []string{"load", "--server", "http://x/fhir", "--parallel", "0", bad}, 2,
			"load: --parallel must be at least 1, got 0"},
		{"server without client", []string{"load", "--server", "http://x/fhir", bad}, 2,
			"load: --client-id is required (or set FHIRGATE_CLIENT_ID): the id the server registered for your client"},
		{"missing file", []string{"load", "--db", db, missing}, 1,
			"load: stat " + missing + ": no such file or directory; name NDJSON files, or directories that hold .ndjson or .ndjson.gz files"},
		{"bad database", []string{"load", "--db", "mysql://x", bad}, 1,
			"load: open database: "},
		{"invalid line", []string{"load", "--db", db, "--batch", "2", bad}, 1,
			"load: " + bad + ":4: the resource has no id: load keeps each resource's id (PUT Type/id), so every line needs one; fix the line, or pass --skip-invalid to skip invalid lines (3 resources were loaded before it; loading again is safe, since resources keep their ids)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runClientCLI(t, context.Background(), tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			msg := err.Error()
			if oneLine(err) != msg {
				t.Errorf("error is not one line: %q", msg)
			}
			if code := exitCode(err); code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			if strings.HasSuffix(tc.want, ": ") {
				if !strings.HasPrefix(msg, tc.want) || !strings.HasSuffix(msg, "; check --db: sqlite:PATH or postgres://user:pass@host/db, and that the database is reachable") {
					t.Fatalf("error %q", msg)
				}
				return
			}
			if msg != tc.want {
				t.Fatalf("error %q\nwant  %q", msg, tc.want)
			}
		})
	}

	// --skip-invalid: the rest loads, the summary counts the skipped line
	// and stderr names it.
	out, stderr, err := runClientCLI(t, context.Background(), "load", "--db", db, "--skip-invalid", bad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "load: loaded 4 resources from 1 files") || !strings.HasSuffix(out, ", 1 invalid lines skipped\n") {
		t.Fatalf("summary %q", out)
	}
	if !strings.Contains(stderr, `msg="skipped an invalid line" line="`+bad+`:4: the resource has no id`) {
		t.Fatalf("stderr %q", stderr)
	}
}

// TestLoadServer loads over the FHIR API as a client registered with
// client create, whose tokens live one second: the load outlives several.
func TestLoadServer(t *testing.T) {
	unsetAdminEnv(t)
	s := ts.Start(t, testdb.SQLiteURL(t))
	keys := keygenDir(t, "--alg", "ES384")
	key := filepath.Join(keys, "private.pem")
	// About 1,700 resources two at a time: over a thousand commits, each
	// waiting for an fsync, outlive a one-second token.
	dir, counts := seedDir(t, 20, false)
	fhirBase := s.URL + "/fhir"
	create := func(id, scope string) {
		t.Helper()
		if _, stderr, err := runClientCLI(t, context.Background(), "client", "create", "--server", fhirBase, "--root-secret", ts.RootSecret,
			"--id", id, "--jwks", filepath.Join(keys, "jwks.json"), "--scope", scope, "--token-lifetime", "1"); err != nil {
			t.Fatalf("client create: %v\n%s", err, stderr)
		}
	}
	create("loader", "system/*.cruds")
	create("reader", "system/*.rs")

	out, stderr, err := runClientCLI(t, context.Background(), "load", "--server", fhirBase, "--client-id", "loader", "--key", key,
		"--batch", "2", "--parallel", "1", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, fmt.Sprintf("load: loaded %d resources from %d files", total(counts), len(counts))) ||
		!strings.Contains(out, " into "+fhirBase+" in ") {
		t.Fatalf("summary:\n%s", out)
	}
	sameCounts(t, liveCounts(t, s.Store()), counts)
	if n := strings.Count(s.Logs.String(), `"path":"/auth/token","status":200`); n < 2 {
		t.Errorf("%d tokens for a load that outlived the first", n)
	}

	// A client that may only read is told so before anything is sent.
	_, _, err = runClientCLI(t, context.Background(), "load", "--server", fhirBase, "--client-id", "reader", "--key", key, dir)
	if err == nil || !strings.HasPrefix(err.Error(), "load: ") || !strings.Contains(err.Error(), "invalid_scope") ||
		!strings.HasSuffix(err.Error(), "; ask only for scopes the client is registered for (--scope)") {
		t.Fatalf("read-only client: %v", err)
	}
	// With a scope it may have, the server refuses the writes.
	_, _, err = runClientCLI(t, context.Background(), "load", "--server", fhirBase, "--client-id", "reader", "--key", key, "--scope", "system/*.rs", dir)
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.HasSuffix(err.Error(), "; the token was refused; check the client's access policy and --scope") {
		t.Fatalf("read-only client with its scope: %v", err)
	}
}
