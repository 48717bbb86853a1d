package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/smart"
)

// TestServeEveryFlagHasEnv: every serve flag has a FHIRGATE_* variable
// named after it (README "Configuration").
func TestServeEveryFlagHasEnv(t *testing.T) {
	exportEnv := app.ExportFlags(pflag.NewFlagSet("x", pflag.ContinueOnError), &app.ExportConfig{})
	newServeCmd().Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		env, ok := serveEnv[f.Name]
		if !ok {
			env, ok = exportEnv[f.Name]
		}
		want := "FHIRGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if !ok || env != want {
			t.Errorf("--%s: environment variable %q, want %s", f.Name, env, want)
		}
	})
}

// serveProc is a running fhirgate serve process.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	done   chan error
}

// startServe runs the binary's serve command with only the FHIRGATE_*
// variables given (none from the test's environment) and waits until it is
// healthy on addr.
func startServe(t *testing.T, env []string, addr string, args ...string) *serveProc {
	t.Helper()
	bin := buildBinary(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &serveProc{cmd: cmd, stderr: &strings.Builder{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("serve did not exit after SIGTERM")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("serve exited: %v\n%s", err, p.stderr)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve did not become healthy\n%s", p.stderr)
	return nil
}

// tokenEndpoint reads token_endpoint from the server's SMART configuration.
func tokenEndpoint(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg smart.Configuration
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.TokenEndpoint
}

// jwksURIToken registers a client whose jwks_uri is on loopback (only
// --allow-private-jwks admits it) and returns the token endpoint's status.
func jwksURIToken(t *testing.T, addr, rootSecret, baseURL string) int {
	t.Helper()
	key, err := client.GenerateKey("ES384", 0)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(client.PublicJWKS(key))
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer keys.Close()
	body := `{"active":true,"jwks_uri":"` + keys.URL + `","grant_types":["client_credentials"],"scope":["system/*.rs"]}`
	req, _ := http.NewRequest("PUT", "http://"+addr+"/Client/loopback", strings.NewReader(body))
	req.SetBasicAuth("root", rootSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("register the client: %d", resp.StatusCode)
	}
	a, err := client.Assertion{Key: key, ClientID: "loopback", TokenURL: baseURL + "/auth/token"}.Sign(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.PostForm("http://"+addr+"/auth/token", url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {smart.AssertionTypeJWTBearer}, "client_assertion": {a}, "scope": {"system/*.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 && !strings.Contains(string(b), "invalid_client") {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode
}

// TestServeEnvironment: the real binary takes FHIRGATE_BASE_URL,
// FHIRGATE_DB and FHIRGATE_ALLOW_PRIVATE_JWKS from the environment, and a
// flag on the command line wins over its variable.
func TestServeEnvironment(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "from-env.db")
	dataDir := filepath.Join(dir, "data")
	env := []string{"FHIRGATE_BASE_URL=http://env.fhirgate.example", "FHIRGATE_DB=sqlite:" + dbPath,
		"FHIRGATE_DATA_DIR=" + dataDir, "FHIRGATE_ALLOW_PRIVATE_JWKS=true", "FHIRGATE_ROOT_SECRET=env-root"}

	t.Run("from the environment", func(t *testing.T) {
		addr := freeAddr(t)
		startServe(t, env, addr)
		if got := tokenEndpoint(t, addr); got != "http://env.fhirgate.example/auth/token" {
			t.Fatalf("token_endpoint %q: FHIRGATE_BASE_URL was not used", got)
		}
		if _, err := os.Stat(dbPath); err != nil {
			t.Fatalf("no database at FHIRGATE_DB: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "fhirgate.db")); err == nil {
			t.Fatal("the database went to the data directory, not to FHIRGATE_DB")
		}
		if code := jwksURIToken(t, addr, "env-root", "http://env.fhirgate.example"); code != 200 {
			t.Fatalf("loopback jwks_uri with FHIRGATE_ALLOW_PRIVATE_JWKS=true: %d", code)
		}
	})
	t.Run("flags win", func(t *testing.T) {
		addr := freeAddr(t)
		flagDB := filepath.Join(dir, "from-flag.db")
		startServe(t, env, addr, "--base-url", "http://flag.fhirgate.example", "--db", "sqlite:"+flagDB,
			"--allow-private-jwks=false")
		if got := tokenEndpoint(t, addr); got != "http://flag.fhirgate.example/auth/token" {
			t.Fatalf("token_endpoint %q: --base-url did not win over FHIRGATE_BASE_URL", got)
		}
		if _, err := os.Stat(flagDB); err != nil {
			t.Fatalf("--db did not win over FHIRGATE_DB: %v", err)
		}
		if code := jwksURIToken(t, addr, "env-root", "http://flag.fhirgate.example"); code != 401 {
			t.Fatalf("loopback jwks_uri with --allow-private-jwks=false: %d, want 401", code)
		}
	})
}

// TestServeBadEnvironment: an invalid FHIRGATE_* value exits 2 with one
// line that names the variable, before anything starts.
func TestServeBadEnvironment(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct{ env, want string }{
		{"FHIRGATE_DEMO=maybe", `fhirgate: FHIRGATE_DEMO="maybe": invalid argument "maybe" for "--demo" flag`},
		{"FHIRGATE_SHUTDOWN_TIMEOUT=soon", `fhirgate: FHIRGATE_SHUTDOWN_TIMEOUT="soon": invalid argument "soon" for "--shutdown-timeout" flag`},
		{"FHIRGATE_CLOCK_LEEWAY=1 minute", `fhirgate: FHIRGATE_CLOCK_LEEWAY="1 minute": invalid argument "1 minute" for "--clock-leeway" flag`},
		{"FHIRGATE_MAX_TOKEN_LIFETIME=forever", `fhirgate: FHIRGATE_MAX_TOKEN_LIFETIME="forever": invalid argument`},
		{"FHIRGATE_ALLOW_PRIVATE_JWKS=sure", `fhirgate: FHIRGATE_ALLOW_PRIVATE_JWKS="sure": invalid argument`},
		{"FHIRGATE_MAX_BODY=big", `fhirgate: FHIRGATE_MAX_BODY="big": invalid argument`},
		// A valid syntax with a value out of range: refused by validation,
		// named by its flag.
		{"FHIRGATE_CLOCK_LEEWAY=10m", "fhirgate: --clock-leeway 10m0s: want 0s to 5m0s"},
		{"FHIRGATE_MAX_TOKEN_LIFETIME=2h", "fhirgate: --max-token-lifetime 2h0m0s: want 1m0s to 1h0m0s"},
		{"FHIRGATE_LOG_LEVEL=loud", "fhirgate: "},
	} {
		t.Run(tc.env, func(t *testing.T) {
			cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
			cmd.Dir = t.TempDir()
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "FHIRGATE_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, tc.env)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatal("serve started instead of refusing the value")
			}
			if err == nil {
				t.Fatal("exit 0")
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Fatalf("want one line starting %q, got %q", tc.want, out)
			}
		})
	}
}
