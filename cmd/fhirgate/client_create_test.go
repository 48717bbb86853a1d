package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// unsetAdminEnv clears the variables client create reads.
func unsetAdminEnv(t *testing.T) {
	unsetClientEnv(t)
	t.Setenv(rootSecretEnv, "")
	os.Unsetenv(rootSecretEnv)
}

// keygenDir runs keygen into a new directory.
func keygenDir(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if _, stderr, err := runClientCLI(t, context.Background(), append([]string{"keygen", "--out", dir}, args...)...); err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	return dir
}

// createdDoc is what client create prints.
type createdDoc struct {
	Client       map[string]any `json:"client"`
	AccessPolicy map[string]any `json:"accessPolicy"`
}

func TestClientCreate(t *testing.T) {
	unsetAdminEnv(t)
	s := ts.Start(t, testdb.SQLiteURL(t))
	keys := keygenDir(t, "--alg", "ES384", "--kid", "k1")
	jwks := filepath.Join(keys, "jwks.json")
	priv := filepath.Join(keys, "private.pem")

	for _, tc := range []struct {
		name   string
		args   []string
		policy bool
		check  func(t *testing.T, c map[string]any)
	}{
		{"jwks file, FHIR base", []string{"--server", s.URL + "/fhir", "--id", "c1", "--jwks", jwks, "--scope", "system/*.rs system/Patient.cruds"}, true,
			func(t *testing.T, c map[string]any) {
				if c["scope"].([]any)[1] != "system/Patient.cruds" || !strings.Contains(mustJSON(c["jwks"]), `"kid":"k1"`) {
					t.Errorf("client %v", c)
				}
			}},
		{"private key, server root", []string{"--server", s.URL + "/", "--id", "c2", "--key", priv, "--scope", "system/*.rs", "--scope", "system/Observation.c"}, true,
			func(t *testing.T, c map[string]any) {
				j := mustJSON(c["jwks"])
				if strings.Contains(j, `"d":`) || !strings.Contains(j, `"kid":"k1"`) || len(c["scope"].([]any)) != 2 {
					t.Errorf("client %v", c)
				}
			}},
		{"jwks_uri", []string{"--server", s.URL + "/fhir", "--id", "c4", "--jwks-uri", "https://keys.example.org/c4/jwks.json"}, true,
			func(t *testing.T, c map[string]any) {
				if c["jwks_uri"] != "https://keys.example.org/c4/jwks.json" || c["jwks"] != nil {
					t.Errorf("client %v", c)
				}
			}},
		{"no policy, token lifetime", []string{"--server", s.URL + "/fhir", "--id", "c3", "--jwks", jwks, "--policy", "none", "--token-lifetime", "60"}, false,
			func(t *testing.T, c map[string]any) {
				if !strings.Contains(mustJSON(c["auth"]), `"access_token_expiration":60`) {
					t.Errorf("client %v", c)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"client", "create", "--root-secret", ts.RootSecret}, tc.args...)
			out, stderr, err := runClientCLI(t, context.Background(), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			var doc createdDoc
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			id := doc.Client["id"].(string)
			// It printed what the server stores.
			stored := s.Do(ts.Req{Method: "GET", Path: "/Client/" + id}).Expect(t, 200).JSON(t)
			if mustJSON(stored) != mustJSON(doc.Client) {
				t.Fatalf("printed %v\nstored  %v", doc.Client, stored)
			}
			tc.check(t, doc.Client)
			if !tc.policy {
				if doc.AccessPolicy != nil || !strings.Contains(stderr, "without a policy") {
					t.Fatalf("policy %v, stderr %q", doc.AccessPolicy, stderr)
				}
				s.Do(ts.Req{Method: "GET", Path: "/AccessPolicy/" + id + "-allow"}).Expect(t, 404)
				return
			}
			pol := s.Do(ts.Req{Method: "GET", Path: "/AccessPolicy/" + id + "-allow"}).Expect(t, 200).JSON(t)
			if mustJSON(pol) != mustJSON(doc.AccessPolicy) || pol["engine"] != "allow" {
				t.Fatalf("policy %v", pol)
			}
			if want := "client create: registered client " + id + " at " + s.URL + " and registered its allow policy " + id + "-allow\n"; stderr != want {
				t.Fatalf("stderr %q\nwant   %q", stderr, want)
			}
			if doc.Client["jwks_uri"] != nil {
				return // nothing serves it
			}
			// The registered key gets a token, and the policy lets it read.
			key, _ := client.LoadKeyFile(priv, "")
			src, _ := client.NewTokenSource(client.Config{ClientID: id, Key: key, Scopes: []string{"system/*.rs"}, FHIRBaseURL: s.URL + "/fhir"})
			resp, err := src.Client().Get(s.URL + "/fhir/Patient/none")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("read as %s: %d", id, resp.StatusCode)
			}
		})
	}

	// Again: the client and policy are replaced, with the environment
	// standing in for the flags.
	t.Setenv(clientEnv["server"], s.URL+"/fhir")
	t.Setenv(rootSecretEnv, ts.RootSecret)
	_, stderr, err := runClientCLI(t, context.Background(), "client", "create", "--id", "c1", "--jwks", jwks)
	if err != nil || !strings.HasPrefix(stderr, "client create: replaced client c1") || !strings.Contains(stderr, "replaced its allow policy") {
		t.Fatalf("%v: %q", err, stderr)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestClientCreateRefusals: every refusal is one line, with what to do, and
// a non-zero exit status.
func TestClientCreateRefusals(t *testing.T) {
	unsetAdminEnv(t)
	s := ts.Start(t, testdb.SQLiteURL(t))
	noRoot := ts.Start(t, testdb.SQLiteURL(t), func(c *app.Config) { c.RootSecret = "" })
	keys := keygenDir(t, "--alg", "ES384", "--kid", "k1")
	jwks := filepath.Join(keys, "jwks.json")
	priv := filepath.Join(keys, "private.pem")
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	key, err := client.LoadKeyFile(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	pub := client.PublicJWKS(key).Keys[0]
	withD := pub
	withD.D = "c2VjcmV0"
	noKid := pub
	noKid.Kid = ""
	badKey := pub
	badKey.X = "AAAA"
	set := func(k client.JWK) string { return mustJSON(client.JWKS{Keys: []client.JWK{k}}) }
	base := []string{"client", "create", "--server", s.URL + "/fhir", "--root-secret", ts.RootSecret, "--id", "c1"}
	missing := filepath.Join(dir, "missing.json")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no server", []string{"client", "create", "--root-secret", "x", "--id", "c1", "--jwks", jwks}, 2,
			"client create: --server is required (or set FHIRGATE_SERVER): the FHIR base URL, e.g. --server http://127.0.0.1:8080/fhir"},
		{"no root secret", []string{"client", "create", "--server", s.URL, "--id", "c1", "--jwks", jwks}, 2,
			"client create: --root-secret is required (or set FHIRGATE_ROOT_SECRET): the secret the server was started with"},
		{"no id", []string{"client", "create", "--server", s.URL, "--root-secret", "x", "--jwks", jwks}, 2,
			"client create: --id is required: the client id to register, e.g. --id my-backend"},
		{"root id", append(base[:6:6], "--id", "root", "--jwks", jwks), 2,
			`client create: --id "root" is not usable: 1 to 64 characters from A-Z a-z 0-9 - ., and not root`},
		{"no keys", base, 2,
			"client create: give the client's keys with exactly one of --jwks FILE, --jwks-uri URL or --key private.pem"},
		{"two key sources", append(base, "--jwks", jwks, "--key", priv), 1,
			"if any flags in the group [jwks jwks-uri key] are set none of the others can be; [jwks key] were all set"},
		{"bad policy", append(base, "--jwks", jwks, "--policy", "deny"), 2,
			`client create: --policy must be allow or none, got "deny"`},
		{"server not a URL", []string{"client", "create", "--server", "localhost:8080", "--root-secret", "x", "--id", "c1", "--jwks", jwks}, 2,
			`client create: --server "localhost:8080" is not an http(s) URL; use the FHIR base URL, e.g. http://127.0.0.1:8080/fhir`},
		{"missing jwks file", append(base, "--jwks", missing), 1,
			"client create: --jwks: open " + missing + ": no such file or directory; pass the jwks.json that fhirgate keygen wrote"},
		{"jwks not JSON", append(base, "--jwks", file("notjson.json", "-----BEGIN PRIVATE KEY-----")), 1,
			"client create: --jwks " + filepath.Join(dir, "notjson.json") + ` is not a JWK Set ({"keys": [...]}): invalid character '-' in numeric literal`},
		{"jwks empty", append(base, "--jwks", file("empty.json", `{"keys":[]}`)), 1,
			"client create: --jwks " + filepath.Join(dir, "empty.json") + ` holds no keys; a JWK Set is {"keys": [...]} with the client's public keys`},
		{"private key in jwks", append(base, "--jwks", file("priv.json", set(withD))), 1,
			"client create: --jwks " + filepath.Join(dir, "priv.json") + ": key 0 (kid k1) is a private key; register only public keys (the jwks.json of fhirgate keygen) and keep the private key to yourself"},
		{"key without kid", append(base, "--jwks", file("nokid.json", set(noKid))), 1,
			"client create: --jwks " + filepath.Join(dir, "nokid.json") + ": key 0 has no kid; SMART clients name their key in every assertion, so each key needs one"},
		{"unusable key", append(base, "--jwks", file("bad.json", set(badKey))), 1,
			"client create: --jwks " + filepath.Join(dir, "bad.json") + ": key 0 (kid k1) is not a usable public key: "},
		{"private key file missing", append(base, "--key", missing), 1,
			"client create: client: read key: open " + missing + ": no such file or directory; pass a private key file such as keys/private.pem from fhirgate keygen"},
		{"wrong root secret", []string{"client", "create", "--server", s.URL + "/fhir", "--root-secret", "wrong", "--id", "c1", "--jwks", jwks}, 1,
			"client create: the server refused the root secret (401 on PUT " + s.URL + "/Client/c1); pass the secret the server was started with (--root-secret or FHIRGATE_ROOT_SECRET); a server started without one has no admin API"},
		{"server without root", []string{"client", "create", "--server", noRoot.URL + "/fhir", "--root-secret", "any", "--id", "c1", "--jwks", jwks}, 1,
			"client create: the server refused the root secret (401 on PUT " + noRoot.URL + "/Client/c1); pass the secret the server was started with (--root-secret or FHIRGATE_ROOT_SECRET); a server started without one has no admin API"},
		{"scope the server refuses", append(base, "--jwks", jwks, "--scope", "user/*.rs"), 1,
			"client create: the server refused the Client (422): "},
		{"jwks_uri not a URL", append(base, "--jwks-uri", "jwks.json"), 2,
			`client create: --jwks-uri "jwks.json" is not an absolute https URL`},
		{"not fhirgate", []string{"client", "create", "--server", s.URL + "/fhir/Patient", "--root-secret", ts.RootSecret, "--id", "c1", "--jwks", jwks}, 1,
			"client create: PUT " + s.URL + "/fhir/Patient/Client/c1: "},
		{"server down", []string{"client", "create", "--server", "http://127.0.0.1:9/fhir", "--root-secret", "x", "--id", "c1", "--jwks", jwks}, 1,
			"client create: Put \"http://127.0.0.1:9/Client/c1\": dial tcp 127.0.0.1:9: connect: connection refused; check that the server at http://127.0.0.1:9 is running and reachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runClientCLI(t, context.Background(), tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || oneLine(err) != msg {
				t.Errorf("error is not one line: %q", msg)
			}
			if code := exitCode(err); code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			if strings.HasSuffix(tc.want, ": ") {
				if !strings.HasPrefix(msg, tc.want) {
					t.Fatalf("error %q\nwant prefix %q", msg, tc.want)
				}
				return
			}
			if msg != tc.want {
				t.Fatalf("error %q\nwant  %q", msg, tc.want)
			}
			if out != "" {
				t.Errorf("stdout %q on failure", out)
			}
		})
	}
	// Nothing was registered along the way.
	s.Do(ts.Req{Method: "GET", Path: "/Client/c1"}).Expect(t, 404)
}
