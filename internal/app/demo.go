package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/smart"
)

// The demo (serve --demo, CONTRACT.md "Build and start"): the synthetic
// payer data set of about a hundred patients, a backend client "demo" whose
// key pair is saved under the data directory, an AccessPolicy that allows
// it, and the commands that use them, printed on stdout.
const (
	// DemoClientID is the id of the demo backend client.
	DemoClientID = "demo"
	// DemoPolicyID is the id of its AccessPolicy.
	DemoPolicyID = "demo-allow"
	// DemoPatients is the size of the demo data set.
	DemoPatients = 100
	// DemoKeyDir is the directory under --data-dir that holds the demo
	// client's private.pem and jwks.json.
	DemoKeyDir = "demo-client"
	// demoScope is the demo client's scope ceiling: read and search
	// everything, which is what token and export need.
	demoScope = "system/*.rs"
)

// setupDemo makes the demo ready, doing only what an earlier start has not
// done: the data set is loaded when its last Group is missing, the key pair
// is generated when its files are missing, the client is registered when it
// is missing or has another key, the policy when it is missing. Then it
// prints how to use them.
func (a *App) setupDemo(ctx context.Context) error {
	groups := seed.Groups(seed.DefaultSeed)
	loaded, err := a.demoDataLoaded(ctx, groups)
	if err != nil {
		return err
	}
	if !loaded {
		if err := a.loadDemoData(ctx); err != nil {
			return err
		}
	}
	keyPath, key, err := demoKey(filepath.Join(a.cfg.DataDir, DemoKeyDir))
	if err != nil {
		return err
	}
	if err := a.registerDemoClient(ctx, key); err != nil {
		return err
	}
	if err := a.allowDemoClient(ctx); err != nil {
		return err
	}
	return a.printDemoHints(keyPath, groups[0])
}

// demoDataLoaded reports whether the data set was loaded before. Groups
// come last in the data set, and the loader commits in order, so the last
// Group stands for all of it.
func (a *App) demoDataLoaded(ctx context.Context, groups []seed.PlanGroup) (bool, error) {
	_, err := a.store.Read(ctx, "Group", groups[len(groups)-1].ID)
	switch {
	case err == nil, errors.Is(err, store.ErrDeleted):
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("demo: %w", err)
}

func (a *App) loadDemoData(ctx context.Context) error {
	a.log.InfoContext(ctx, "demo: loading the synthetic data set", "patients", DemoPatients)
	w := loader.NewStoreWriter(a.store, 0)
	err := seed.Generate(ctx, seed.Options{Patients: DemoPatients, Seed: seed.DefaultSeed}, func(_, _ string, body []byte) error {
		r, err := resource.Parse(body) // copies body, which Generate reuses
		if err != nil {
			return err
		}
		return w.Add(ctx, r)
	})
	if err == nil {
		err = w.Flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("demo: load the data set: %w", err)
	}
	a.log.InfoContext(ctx, "demo: data set loaded", "resources", w.Written())
	return nil
}

// demoKey loads the demo client's key pair from dir, generating it on first
// use: private.pem (mode 0600) and jwks.json, as fhirgate keygen writes
// them, so that the token and export commands take --key dir/private.pem.
func demoKey(dir string) (string, *client.Key, error) {
	privPath := filepath.Join(dir, "private.pem")
	key, err := client.LoadKeyFile(privPath, "")
	if err == nil {
		return privPath, key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("demo: %w; delete %s to start the demo client over", err, dir)
	}
	if key, err = client.GenerateKey(client.ES384, 0); err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	jwks, err := json.MarshalIndent(client.PublicJWKS(key), "", "  ")
	if err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	// jwks.json first: a private.pem without it would still work, the
	// other way round would not.
	if err := writeFileAtomic(filepath.Join(dir, client.JWKSFileName), append(jwks, '\n'), 0o644); err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	if err := writeFileAtomic(privPath, pemBytes, 0o600); err != nil {
		return "", nil, fmt.Errorf("demo: %w", err)
	}
	return privPath, key, nil
}

// writeFileAtomic writes data to a temporary file with mode perm beside
// path and renames it into place, so a crash never leaves half a key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// registerDemoClient registers the demo client with the public half of key,
// unless it is registered with that key already. It goes through the admin
// API's rules (adminCodec), so the stored client is exactly what PUT
// /Client/demo would store, and needs no root secret.
func (a *App) registerDemoClient(ctx context.Context, key *client.Key) error {
	rec, err := a.store.GetClient(ctx, DemoClientID)
	switch {
	case err == nil && clientHasKey(rec.Body, key):
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("demo: %w", err)
	}
	body, err := json.Marshal(map[string]any{
		"type":   "bulk-api-client",
		"active": true,
		"auth": map[string]any{"client_credentials": map[string]any{
			"client_assertion_types":  []string{smart.AssertionTypeJWTBearer},
			"access_token_expiration": 300,
			"token_format":            "jwt",
		}},
		"scope":       []string{demoScope},
		"jwks":        client.PublicJWKS(key),
		"grant_types": []string{"client_credentials"},
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	stored, hash, err := adminCodec{}.PrepareClient(DemoClientID, body)
	if err != nil {
		return fmt.Errorf("demo: the demo client does not register: %w", err)
	}
	if _, err := a.store.PutClient(ctx, store.ClientRecord{ID: DemoClientID, Body: stored, SecretHash: hash}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	a.auth.server.ClientChanged(DemoClientID)
	a.log.InfoContext(ctx, "demo: registered the demo client", "client_id", DemoClientID, "kid", key.KID())
	return nil
}

// clientHasKey reports whether a stored client's inline JWK Set holds the
// public half of key.
func clientHasKey(body []byte, key *client.Key) bool {
	var c struct {
		JWKS client.JWKS `json:"jwks"`
	}
	if json.Unmarshal(body, &c) != nil {
		return false
	}
	for _, k := range c.JWKS.Keys {
		if tp, err := k.Thumbprint(); err == nil && tp == key.Thumbprint() && k.Kid == key.KID() {
			return true
		}
	}
	return false
}

// allowDemoClient registers the demo client's allow policy when it is
// missing; one an admin changed is left alone.
func (a *App) allowDemoClient(ctx context.Context) error {
	_, err := a.store.GetPolicy(ctx, DemoPolicyID)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("demo: %w", err)
	}
	body := []byte(`{"engine":"allow","link":[{"resourceType":"Client","id":"` + DemoClientID + `"}]}`)
	stored, err := adminCodec{}.PreparePolicy(DemoPolicyID, body)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := a.store.PutPolicy(ctx, store.PolicyRecord{ID: DemoPolicyID, Body: stored}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return a.reloadPolicies(ctx)
}

// printDemoHints prints, on stdout rather than in the log, the commands
// that use the demo client: copy, paste, run.
func (a *App) printDemoHints(keyPath string, g seed.PlanGroup) error {
	if abs, err := filepath.Abs(keyPath); err == nil {
		keyPath = abs
	}
	out := a.cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	_, err := io.WriteString(out, DemoHints(a.baseURL+"/fhir", keyPath, g))
	return err
}

// DemoHints is the text serve --demo prints: how to get a token as the
// demo client and export the members of Group g.
func DemoHints(fhirBase, keyPath string, g seed.PlanGroup) string {
	key := shellQuote(keyPath)
	var b strings.Builder
	fmt.Fprintf(&b, "\nfhirgate demo: %d synthetic patients and the backend client %q (scope %s) are ready.\n", DemoPatients, DemoClientID, demoScope)
	fmt.Fprintf(&b, "\nGet an access token:\n\n  fhirgate token --server %s --client-id %s --key %s --scope %q\n",
		fhirBase, DemoClientID, key, demoScope)
	fmt.Fprintf(&b, "\nExport the members of the plan %s (%s) as NDJSON:\n\n  fhirgate export --server %s --client-id %s --key %s --group %s --out ./export\n",
		g.Plan, g.Payer, fhirBase, DemoClientID, key, g.ID)
	fmt.Fprintf(&b, "\n(From a source checkout, run go run ./cmd/fhirgate in place of fhirgate.)\n\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
