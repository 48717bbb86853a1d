package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/client/smarttest"
)

// runClientCLI runs the root command in-process, as main does, with the
// FHIRGATE_* client variables unset unless the test sets them after.
func runClientCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb syncBuffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// unsetClientEnv clears the client variables for the test.
func unsetClientEnv(t *testing.T) {
	for _, k := range clientEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// keygen runs the keygen command and registers the result as client c1.
func keygen(t *testing.T, srv *smarttest.Server, args ...string) (dir string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "keys")
	out, _, err := runClientCLI(t, context.Background(), append([]string{"keygen", "--out", dir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "wrote "+filepath.Join(dir, "private.pem")) {
		t.Errorf("keygen said %q", out)
	}
	jwks, err := os.ReadFile(filepath.Join(dir, "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	if srv != nil {
		if err := srv.RegisterClient(smarttest.Client{ID: "c1", JWKS: jwks, Scopes: []string{"system/*.rs"}}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTestServer(t *testing.T) *smarttest.Server {
	srv := smarttest.New(t, smarttest.Options{})
	srv.AddResources("Patient", `{"resourceType":"Patient","id":"p1"}`, `{"resourceType":"Patient","id":"p2"}`)
	srv.GenerateResources("Observation", 30, 200)
	srv.AddGroup("g1")
	return srv
}

func TestKeygenTokenExport(t *testing.T) {
	unsetClientEnv(t)
	for _, tc := range []struct {
		alg  string
		args []string
	}{
		{"RS384", []string{"--alg", "RS384", "--bits", "2048", "--kid", "rsa-key"}},
		{"ES384", []string{"--alg", "ES384", "--kid", "ec-key"}},
		{"ES256", []string{"--alg", "ES256"}},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			srv := newTestServer(t)
			dir := keygen(t, srv, tc.args...)
			fi, _ := os.Stat(filepath.Join(dir, "private.pem"))
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("private.pem mode %v, want 0600", fi.Mode().Perm())
			}
			var set client.JWKS
			raw, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
			if json.Unmarshal(raw, &set) != nil || len(set.Keys) != 1 || set.Keys[0].IsPrivate() || set.Keys[0].Alg != tc.alg {
				t.Fatalf("jwks.json = %s", raw)
			}

			key := filepath.Join(dir, "private.pem")
			out, _, err := runClientCLI(t, context.Background(), "token", "--server", srv.FHIRBaseURL(),
				"--client-id", "c1", "--key", key, "--scope", "system/*.rs")
			if err != nil {
				t.Fatal(err)
			}
			var tr map[string]any
			if err := json.Unmarshal([]byte(out), &tr); err != nil {
				t.Fatalf("token output is not JSON: %q", out)
			}
			if tr["access_token"] == "" || tr["token_type"] != "Bearer" || tr["expires_in"] != 300.0 || tr["scope"] != "system/*.rs" {
				t.Errorf("token response %v", tr)
			}

			outDir := filepath.Join(t.TempDir(), "export")
			out, stderr, err := runClientCLI(t, context.Background(), "export", "--server", srv.FHIRBaseURL(),
				"--client-id", "c1", "--key", key, "--group", "g1", "--type", "Patient,Observation",
				"--since", "2024-01-31", "--out", outDir)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if !strings.HasPrefix(out, "exported 32 resources in 2 files") {
				t.Errorf("stdout %q", out)
			}
			if !strings.Contains(stderr, "msg=downloaded") || !strings.Contains(stderr, "Observation.ndjson") {
				t.Errorf("stderr lacks progress lines: %q", stderr)
			}
			for _, f := range []string{"Patient.ndjson", "Observation.ndjson", "manifest.json"} {
				if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
					t.Error(err)
				}
			}
			k := srv.Kickoffs()[0]
			if k.Path != "/fhir/Group/g1/$export" || k.Params["_since"][0] != "2024-01-31T00:00:00Z" || len(k.Params["_type"]) != 2 {
				t.Errorf("kick-off %+v", k)
			}
		})
	}
}

func TestExportFlagsReachTheServer(t *testing.T) {
	unsetClientEnv(t)
	srv := newTestServer(t)
	key := filepath.Join(keygen(t, srv, "--alg", "ES384"), "private.pem")
	_, stderr, err := runClientCLI(t, context.Background(), "export", "--server", srv.FHIRBaseURL()+"/",
		"--client-id", "c1", "--key", key, "--patient", "--patient-ref", "Patient/p1",
		"--type", "Patient", "--type", "Observation", "--type-filter", "Observation?code=1,2",
		"--elements", "id,meta", "--include-associated-data", "LatestProvenanceResources",
		"--output-format", "ndjson", "--parallel", "1", "--out", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	k := srv.Kickoffs()[0]
	want := map[string][]string{
		"patient": {"Patient/p1"}, "_type": {"Patient", "Observation"}, "_typeFilter": {"Observation?code=1,2"},
		"_elements": {"id", "meta"}, "includeAssociatedData": {"LatestProvenanceResources"}, "_outputFormat": {"ndjson"},
	}
	if k.Method != "POST" || k.Path != "/fhir/Patient/$export" || !equalParams(k.Params, want) {
		t.Errorf("kick-off %s %s %v", k.Method, k.Path, k.Params)
	}
}

func equalParams(a, b map[string][]string) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestClientCommandsReadEnvironment(t *testing.T) {
	srv := newTestServer(t)
	dir := keygen(t, srv, "--alg", "ES256")
	t.Setenv("FHIRGATE_SERVER", srv.FHIRBaseURL())
	t.Setenv("FHIRGATE_CLIENT_ID", "c1")
	t.Setenv("FHIRGATE_KEY", filepath.Join(dir, "private.pem"))
	out, _, err := runClientCLI(t, context.Background(), "export", "--type", "Patient", "--out", t.TempDir())
	if err != nil || !strings.HasPrefix(out, "exported 2 resources in 1 files") {
		t.Fatalf("export from the environment: %v %q", err, out)
	}
	// A flag wins over the environment.
	_, _, err = runClientCLI(t, context.Background(), "token", "--client-id", "someone-else")
	if err == nil || !strings.Contains(err.Error(), `unknown client "someone-else"`) {
		t.Errorf("err = %v", err)
	}
}

func TestJWKSCommands(t *testing.T) {
	unsetClientEnv(t)
	srv := newTestServer(t)
	dir := keygen(t, nil, "--alg", "ES384", "--kid", "served-key")
	key := filepath.Join(dir, "private.pem")

	// jwks prints the same set that keygen wrote, kid included.
	out, _, err := runClientCLI(t, context.Background(), "jwks", "--key", key)
	if err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
	if out != string(written) {
		t.Errorf("jwks printed\n%s\nkeygen wrote\n%s", out, written)
	}

	// jwks serve hosts it; the server fetches it as the client's jwks_uri.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stdout syncBuffer
	go func() {
		root := newRootCmd()
		root.SetOut(&stdout)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"jwks", "serve", "--addr", "127.0.0.1:0", "--jwks", filepath.Join(dir, "jwks.json"), "--max-age", "90s"})
		done <- root.ExecuteContext(ctx)
	}()
	var jwksURL string
	for deadline := time.Now().Add(5 * time.Second); jwksURL == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s := stdout.String(); strings.Contains(s, " (Ctrl-C") {
			jwksURL = strings.Fields(strings.TrimPrefix(s, "serving the JWK Set at "))[0]
		}
	}
	if jwksURL == "" {
		t.Fatal("jwks serve did not start")
	}
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "public, max-age=90" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", resp.Header)
	}
	if !json.Valid(body) || !strings.Contains(string(body), `"served-key"`) {
		t.Errorf("body %s", body)
	}
	if r, _ := http.Get(strings.Replace(jwksURL, "/.well-known/jwks.json", "/jwks.json", 1)); r == nil || r.StatusCode != 200 {
		t.Error("/jwks.json is not served")
	}

	if err := srv.RegisterClient(smarttest.Client{ID: "c1", JWKSURI: jwksURL, Scopes: []string{"system/*.rs"}}); err != nil {
		t.Fatal(err)
	}
	out, _, err = runClientCLI(t, context.Background(), "token", "--server", srv.FHIRBaseURL(), "--client-id", "c1",
		"--key", key, "--jku", jwksURL)
	if err != nil || !strings.Contains(out, "access_token") {
		t.Fatalf("token through jwks_uri: %v %q", err, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("jwks serve ended with %v", err)
	}
}

func TestExportInterruptedDeletesJob(t *testing.T) {
	unsetClientEnv(t)
	srv := newTestServer(t)
	srv.Set(func(b *smarttest.Behavior) { b.PollsBeforeDone = 1000 })
	key := filepath.Join(keygen(t, srv, "--alg", "ES384"), "private.pem")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, _, err := runClientCLI(t, ctx, "export", "--server", srv.FHIRBaseURL(), "--client-id", "c1", "--key", key, "--out", t.TempDir())
	want := "export: interrupted; the export job was deleted on the server, run the command again to start over"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if len(srv.Deletes()) != 1 {
		t.Errorf("deletes %v", srv.Deletes())
	}
}

func TestClientCommandErrors(t *testing.T) {
	unsetClientEnv(t)
	srv := newTestServer(t)
	keyDir := keygen(t, srv, "--alg", "ES384")
	key := filepath.Join(keyDir, "private.pem")
	privJWKS := filepath.Join(t.TempDir(), "private-jwks.json")
	os.WriteFile(privJWKS, []byte(`{"keys":[{"kty":"EC","kid":"x","crv":"P-256","x":"a","y":"b","d":"c"}]}`), 0o600)
	base := []string{"--server", srv.FHIRBaseURL(), "--client-id", "c1", "--key", key}
	with := func(cmd string, extra ...string) []string { return append(append([]string{cmd}, base...), extra...) }

	for _, tc := range []struct {
		name     string
		args     []string
		want     string
		wantCode int
	}{
		{"token without server", []string{"token", "--client-id", "c1", "--key", key},
			"token: --server is required (or set FHIRGATE_SERVER): the FHIR base URL, e.g. --server http://127.0.0.1:8080/fhir", 2},
		{"export without key", []string{"export", "--server", "http://x/fhir", "--client-id", "c1", "--out", "d"},
			"export: --key is required (or set FHIRGATE_KEY): the private key file, e.g. --key keys/private.pem from fhirgate keygen", 2},
		{"unknown client", []string{"token", "--server", srv.FHIRBaseURL(), "--client-id", "nobody", "--key", key},
			`invalid_client: unknown client "nobody"; check that --client-id nobody is registered with the public key (kid of --key) from jwks.json`, 1},
		{"scope not granted", with("token", "--scope", "system/*.cruds"),
			"invalid_scope: none of the requested scopes \"system/*.cruds\" is registered for the client; ask only for scopes the client is registered for (--scope)", 1},
		{"server is not the FHIR base", []string{"token", "--server", srv.URL + "/api", "--client-id", "c1", "--key", key},
			"/api/.well-known/smart-configuration: 404 Not Found: 404 page not found; check that --server is the FHIR base URL", 1},
		{"server not running", []string{"token", "--server", "http://127.0.0.1:1/fhir", "--client-id", "c1", "--key", key},
			"check that the server at http://127.0.0.1:1/fhir is running and reachable", 1},
		{"missing key file", []string{"token", "--server", srv.FHIRBaseURL(), "--client-id", "c1", "--key", "/nonexistent.pem"},
			"pass the private key that fhirgate keygen wrote (--key DIR/private.pem)", 1},
		{"public key as key", with("token", "--key", filepath.Join(keyDir, "jwks.json")),
			"no private key: the JWK has no d member (is this the public JWKS?)", 1},
		{"alg that does not fit", with("token", "--alg", "RS384"), `token: --alg: client: algorithm "RS384" does not fit a P-384 key (use ES384)`, 2},
		{"export without out", with("export"), "export: --out is required: name the directory for the NDJSON files, e.g. --out ./export", 2},
		{"bad since", with("export", "--since", "yesterday", "--out", "d"),
			`export: --since "yesterday" is not an instant; use e.g. 2024-01-31T00:00:00Z or 2024-01-31`, 2},
		{"bad type", with("export", "--type", "Patinet", "--out", "d"),
			`export: --type "Patinet" is not a FHIR R4 resource type; check the spelling (e.g. Patient,Observation)`, 2},
		{"group and patient", with("export", "--group", "g1", "--patient", "--out", "d"), "[group patient] were all set", 1},
		{"patient-ref at system level", with("export", "--patient-ref", "Patient/1", "--out", "d"),
			"export: --patient-ref needs --patient or --group: a system export cannot be limited to patients", 2},
		{"unknown group", with("export", "--group", "nope", "--out", t.TempDir()),
			"404 Not Found: Group/nope is not known; check the command's parameters against what the server supports", 1},
		{"keygen without out", []string{"keygen"}, "keygen: --out is required: name the directory for private.pem and jwks.json, e.g. --out ./keys", 2},
		{"keygen over a key", []string{"keygen", "--out", keyDir},
			"keygen: " + filepath.Join(keyDir, "private.pem") + " already exists; choose another --out, or pass --force to replace it", 1},
		{"keygen bad alg", []string{"keygen", "--alg", "HS256", "--out", t.TempDir()}, `keygen: client: unsupported algorithm "HS256"`, 2},
		{"keygen bits with EC", []string{"keygen", "--alg", "ES384", "--bits", "2048", "--out", t.TempDir()}, "a key size applies to RSA only", 2},
		{"jwks without key", []string{"jwks"}, "jwks: --key is required", 2},
		{"jwks serve private", []string{"jwks", "serve", "--jwks", privJWKS}, `holds a private key (kid "x"); serve only public keys`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runClientCLI(t, context.Background(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(oneLine(err), "\n") {
				t.Error("message is not one line")
			}
			if code := exitCode(err); code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
		})
	}
}

func TestKeygenForceReplaces(t *testing.T) {
	dir := keygen(t, nil, "--alg", "ES256")
	before, _ := os.ReadFile(filepath.Join(dir, "private.pem"))
	if _, _, err := runClientCLI(t, context.Background(), "keygen", "--alg", "ES256", "--out", dir, "--force"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "private.pem"))
	if bytes.Equal(before, after) {
		t.Error("--force kept the old key")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestProgressBarView(t *testing.T) {
	var buf syncBuffer // the spinner renders from its own goroutine
	v := &progressView{bar: progressbar.NewOptions(-1, progressbar.OptionSetWriter(&buf))}
	v.update(bulk.Progress{Phase: bulk.PhaseWaiting, Message: "40% done"})
	v.update(bulk.Progress{Phase: bulk.PhaseDownloading, FilesTotal: 4, FilesDone: 1, Resources: 1234, Bytes: 3 << 20})
	v.finish()
	for _, want := range []string{"40% done", "1/4 files, 1234 resources, 3.0 MiB"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("bar output lacks %q: %q", want, buf.String())
		}
	}
}
