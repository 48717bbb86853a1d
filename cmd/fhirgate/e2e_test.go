package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// runBin runs the fhirgate binary without any FHIRGATE_* variable of the
// test's environment.
func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs the binary and fails the test unless it exits 0.
func mustRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, stderr, code := runBin(t, bin, args...)
	if code != 0 {
		t.Fatalf("fhirgate %s: exit %d\n%s", args[0], code, stderr)
	}
	return out
}

// quickExport tunes a test server's export for quick turnarounds.
func quickExport(c *app.Config) {
	c.Export.PollInterval = time.Second
	c.Export.IdleWait = 20 * time.Millisecond
	c.Export.SweepEvery = 100 * time.Millisecond
}

// ndjsonCounts counts the lines of the NDJSON files an export wrote, per
// resource type (the name before the first dot; error files excluded).
func ndjsonCounts(t *testing.T, dir string) map[string]int {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	out := map[string]int{}
	for _, p := range paths {
		typ, _, _ := strings.Cut(filepath.Base(p), ".")
		if typ == "error" || typ == "deleted" {
			t.Fatalf("the export wrote %s", p)
		}
		out[typ] += len(readNDJSON(t, p))
	}
	return out
}

// TestCLIEndToEnd drives the real binary through a backend client's life:
// keygen, client create, token, seed, load, export; what was exported is
// what was seeded. Then the same data set goes in with load --db.
func TestCLIEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	s := ts.Start(t, testdb.SQLiteURL(t), quickExport)
	base := s.URL + "/fhir"
	work := t.TempDir()
	keys, data := filepath.Join(work, "keys"), filepath.Join(work, "seed")
	key := filepath.Join(keys, "private.pem")
	client := []string{"--server", base, "--client-id", "e2e", "--key", key}

	mustRun(t, bin, "keygen", "--alg", "ES384", "--kid", "e2e-key", "--out", keys)
	created := mustRun(t, bin, "client", "create", "--server", base, "--root-secret", ts.RootSecret, "--id", "e2e",
		"--jwks", filepath.Join(keys, "jwks.json"), "--scope", "system/*.cruds")
	if !strings.Contains(created, `"kid": "e2e-key"`) || !strings.Contains(created, `"engine": "allow"`) {
		t.Fatalf("client create printed\n%s", created)
	}

	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, bin, append([]string{"token"}, append(client, "--scope", "system/*.rs")...)...)), &tok); err != nil || tok.Scope != "system/*.rs" {
		t.Fatalf("token: %v %+v", err, tok)
	}
	req, _ := http.NewRequest("GET", base+"/Patient/nobody", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 404 {
		t.Fatalf("the token does not work: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	mustRun(t, bin, "seed", "--patients", "25", "--out", data)
	seeded, err := seed.Counts(seed.Options{Patients: 25, Seed: seed.DefaultSeed})
	if err != nil {
		t.Fatal(err)
	}
	loaded := mustRun(t, bin, append(append([]string{"load"}, client...), data)...)
	if !strings.Contains(loaded, "load: loaded ") {
		t.Fatalf("load printed\n%s", loaded)
	}

	all := filepath.Join(work, "export-all")
	mustRun(t, bin, append(append([]string{"export"}, client...), "--out", all)...)
	sameCounts(t, ndjsonCounts(t, all), seeded)

	// A Group export holds the Group's members.
	g := seed.Groups(seed.DefaultSeed)[0]
	var members int
	for _, line := range readNDJSON(t, filepath.Join(data, "Group.ndjson")) {
		var grp struct {
			ID     string `json:"id"`
			Member []any  `json:"member"`
		}
		json.Unmarshal(line, &grp)
		if grp.ID == g.ID {
			members = len(grp.Member)
		}
	}
	grp := filepath.Join(work, "export-group")
	mustRun(t, bin, append(append([]string{"export"}, client...), "--group", g.ID, "--type", "Patient", "--out", grp)...)
	if got := ndjsonCounts(t, grp)["Patient"]; got != members || members == 0 {
		t.Fatalf("Group %s: %d Patients exported, %d members", g.ID, got, members)
	}

	// load --db: straight into a new database, then served.
	db := testdb.SQLiteURL(t)
	mustRun(t, bin, "load", "--db", db, data)
	s2 := ts.Start(t, db, quickExport)
	base2 := s2.URL + "/fhir"
	mustRun(t, bin, "client", "create", "--server", base2, "--root-secret", ts.RootSecret, "--id", "e2e", "--key", key)
	all2 := filepath.Join(work, "export-db")
	mustRun(t, bin, "export", "--server", base2, "--client-id", "e2e", "--key", key, "--out", all2)
	sameCounts(t, ndjsonCounts(t, all2), seeded)

	// A failure: one line on stderr, exit status 1.
	_, stderr, code := runBin(t, bin, "load", "--server", base, "--client-id", "nobody", "--key", key, data)
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "fhirgate: load: ") || !strings.Contains(stderr, "invalid_client") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
