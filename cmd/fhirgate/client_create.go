package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/smart"
)

func init() { register(newClientCmd) }

// rootSecretEnv holds the root secret when --root-secret is not given, as
// for serve.
const rootSecretEnv = "FHIRGATE_ROOT_SECRET"

// newClientCmd builds `fhirgate client`, the parent of the commands that
// manage registered clients through the admin API.
func newClientCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage the clients registered on a fhirgate server (admin API, as root)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newClientCreateCmd())
	return cmd
}

// clientCreateOptions are the flags of client create.
type clientCreateOptions struct {
	server     string
	rootSecret string
	id         string
	jwksFile   string
	jwksURI    string
	keyPath    string
	kid        string
	scopes     []string
	policy     string
	policyID   string
	lifetime   int
}

func newClientCreateCmd() *cobra.Command {
	var o clientCreateOptions
	cmd := &cobra.Command{
		Use:   "create --server BASE --root-secret S --id ID (--jwks FILE | --jwks-uri URL | --key private.pem) [--scope SCOPE ...] [--policy allow|none]",
		Short: "Register a SMART backend client and its allow policy on a fhirgate server",
		Long: `Register a SMART Backend Services client on a fhirgate server through its
admin API (PUT /Client/ID, then PUT /AccessPolicy/ID-allow), authenticating as
the built-in root client, and print what the server stored as JSON.

BASE is the server's FHIR base URL, as the other commands take it
(http://127.0.0.1:8080/fhir); the admin API lives at its root. The root
secret is the one the server was started with (--root-secret, or
FHIRGATE_ROOT_SECRET for both).

The client's public keys come from one of:
  --jwks FILE       a JWK Set file, such as the jwks.json of fhirgate keygen
                    (registered inline; private keys are refused)
  --jwks-uri URL    a URL the server fetches the JWK Set from (https; see
                    serve --allow-private-jwks for loopback addresses)
  --key FILE        a private key file, whose public half is registered
                    inline (the private key never leaves this machine)

--scope sets the client's scope ceiling (system/ scopes, repeat the flag or
separate by spaces; default system/*.rs). --policy allow (the default) also
registers an AccessPolicy that allows the client everything its scopes allow;
--policy none registers the client alone (it then gets 403 until a policy
allows it). Running the command again replaces the client and its policy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd.Flags(), map[string]string{"server": clientEnv["server"], "root-secret": rootSecretEnv}); err != nil {
				return err
			}
			return runClientCreate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "FHIR base URL of the fhirgate server, e.g. http://127.0.0.1:8080/fhir (env FHIRGATE_SERVER)")
	f.StringVar(&o.rootSecret, "root-secret", "", "the server's root secret (env "+rootSecretEnv+")")
	f.StringVar(&o.id, "id", "", "client id to register")
	f.StringVar(&o.jwksFile, "jwks", "", "JWK Set file with the client's public keys, e.g. keys/jwks.json from fhirgate keygen")
	f.StringVar(&o.jwksURI, "jwks-uri", "", "URL of the client's JWK Set, fetched by the server")
	f.StringVar(&o.keyPath, "key", "", "private key file whose public half to register, e.g. keys/private.pem")
	f.StringVar(&o.kid, "kid", "", "key id to register with --key (default: the kid in a jwks.json next to it, else the RFC 7638 thumbprint)")
	f.StringArrayVar(&o.scopes, "scope", []string{"system/*.rs"}, "scope ceiling of the client; repeat or separate by spaces")
	f.StringVar(&o.policy, "policy", "allow", "allow: also register an AccessPolicy allowing the client; none: register the client alone")
	f.StringVar(&o.policyID, "policy-id", "", "id of the AccessPolicy (default ID-allow)")
	f.IntVar(&o.lifetime, "token-lifetime", 300, "lifetime of the client's access tokens in seconds (1 to 86400)")
	cmd.MarkFlagsMutuallyExclusive("jwks", "jwks-uri", "key")
	return cmd
}

// check reports the first missing or contradictory flag.
func (o *clientCreateOptions) check() error {
	keys := 0
	for _, v := range []string{o.jwksFile, o.jwksURI, o.keyPath} {
		if v != "" {
			keys++
		}
	}
	switch {
	case strings.TrimSpace(o.server) == "":
		return usageError("client create: --server is required (or set %s): the FHIR base URL, e.g. --server http://127.0.0.1:8080/fhir", clientEnv["server"])
	case o.rootSecret == "":
		return usageError("client create: --root-secret is required (or set %s): the secret the server was started with", rootSecretEnv)
	case o.id == "":
		return usageError("client create: --id is required: the client id to register, e.g. --id my-backend")
	case !fhir.ValidID(o.id) || o.id == "root":
		return usageError("client create: --id %q is not usable: 1 to 64 characters from A-Z a-z 0-9 - ., and not root", o.id)
	case keys != 1:
		return usageError("client create: give the client's keys with exactly one of --jwks FILE, --jwks-uri URL or --key private.pem")
	case o.kid != "" && o.keyPath == "":
		return usageError("client create: --kid goes with --key")
	case o.policy != "allow" && o.policy != "none":
		return usageError("client create: --policy must be allow or none, got %q", o.policy)
	case o.lifetime < 1 || o.lifetime > 86400:
		return usageError("client create: --token-lifetime must be 1 to 86400 seconds, got %d", o.lifetime)
	}
	if o.policyID == "" {
		o.policyID = o.id + "-allow"
	}
	if !fhir.ValidID(o.policyID) {
		return usageError("client create: --policy-id %q is not a valid id", o.policyID)
	}
	return nil
}

func runClientCreate(ctx context.Context, stdout, stderr io.Writer, o clientCreateOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	root, err := serverRoot(o.server)
	if err != nil {
		return err
	}
	body, err := o.clientBody()
	if err != nil {
		return err
	}
	adm := &adminClient{root: root, secret: o.rootSecret, hc: &http.Client{Timeout: 30 * time.Second}}
	stored, created, err := adm.put(ctx, "Client", o.id, body)
	if err != nil {
		return adm.explain(err, "Client")
	}
	out := map[string]json.RawMessage{"client": stored}
	summary := fmt.Sprintf("client create: %s client %s at %s", createdWord(created), o.id, root)
	if o.policy == "allow" {
		pol, pcreated, err := adm.put(ctx, "AccessPolicy", o.policyID, o.policyBody())
		if err != nil {
			return adm.explain(err, "AccessPolicy")
		}
		out["accessPolicy"] = pol
		summary += fmt.Sprintf(" and %s its allow policy %s", createdWord(pcreated), o.policyID)
	} else {
		summary += " without a policy: it gets 403 until an AccessPolicy allows it"
	}
	doc, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("client create: %w", err)
	}
	if _, err := stdout.Write(append(doc, '\n')); err != nil {
		return err
	}
	fmt.Fprintln(stderr, summary)
	return nil
}

func createdWord(created bool) string {
	if created {
		return "registered"
	}
	return "replaced"
}

// serverRoot derives the server's root URL, where the admin API lives,
// from the FHIR base URL the other commands take; a root URL is taken as
// it is.
func serverRoot(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(base), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError("client create: --server %q is not an http(s) URL; use the FHIR base URL, e.g. http://127.0.0.1:8080/fhir", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/fhir")
	u.RawPath, u.RawQuery, u.Fragment, u.User = "", "", "", nil
	return strings.TrimRight(u.String(), "/"), nil
}

// clientBody is the Client registration: the JSON of the seed
// aidbox-smart-backend-services.md, with an inline jwks or a jwks_uri.
func (o *clientCreateOptions) clientBody() ([]byte, error) {
	scopes := []string{}
	for _, s := range o.scopes {
		scopes = append(scopes, strings.Fields(s)...)
	}
	if len(scopes) == 0 {
		return nil, usageError("client create: --scope is empty; give at least one system/ scope, e.g. system/*.rs")
	}
	c := map[string]any{
		"resourceType": "Client",
		"id":           o.id,
		"type":         "bulk-api-client",
		"active":       true,
		"auth": map[string]any{"client_credentials": map[string]any{
			"client_assertion_types":  []string{smart.AssertionTypeJWTBearer},
			"access_token_expiration": o.lifetime,
			"token_format":            "jwt",
		}},
		"scope":       scopes,
		"grant_types": []string{"client_credentials"},
	}
	switch {
	case o.jwksURI != "":
		u, err := url.Parse(o.jwksURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usageError("client create: --jwks-uri %q is not an absolute https URL", o.jwksURI)
		}
		c["jwks_uri"] = o.jwksURI
	case o.jwksFile != "":
		set, err := readPublicJWKS(o.jwksFile)
		if err != nil {
			return nil, err
		}
		c["jwks"] = set
	default:
		key, err := client.LoadKeyFile(o.keyPath, o.kid)
		if err != nil {
			return nil, fmt.Errorf("client create: %w; pass a private key file such as keys/private.pem from fhirgate keygen", err)
		}
		c["jwks"] = client.PublicJWKS(key)
	}
	return json.Marshal(c)
}

// readPublicJWKS reads a JWK Set file and checks that it holds only usable
// public keys: registering a private key would hand it to the server and
// to every admin who reads the client.
func readPublicJWKS(path string) (*client.JWKS, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client create: --jwks: %w; pass the jwks.json that fhirgate keygen wrote", err)
	}
	var set client.JWKS
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&set); err != nil || dec.More() {
		if err == nil {
			err = errors.New("data after the JSON object")
		}
		return nil, fmt.Errorf("client create: --jwks %s is not a JWK Set ({\"keys\": [...]}): %v", path, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("client create: --jwks %s holds no keys; a JWK Set is {\"keys\": [...]} with the client's public keys", path)
	}
	for i, k := range set.Keys {
		name := fmt.Sprintf("key %d", i)
		if k.Kid != "" {
			name = fmt.Sprintf("key %d (kid %s)", i, k.Kid)
		}
		if k.IsPrivate() {
			return nil, fmt.Errorf("client create: --jwks %s: %s is a private key; register only public keys (the jwks.json of fhirgate keygen) and keep the private key to yourself", path, name)
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("client create: --jwks %s: %s has no kid; SMART clients name their key in every assertion, so each key needs one", path, name)
		}
		if _, err := k.PublicKey(); err != nil {
			return nil, fmt.Errorf("client create: --jwks %s: %s is not a usable public key: %v", path, name, err)
		}
	}
	return &set, nil
}

func (o *clientCreateOptions) policyBody() []byte {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "AccessPolicy",
		"id":           o.policyID,
		"engine":       "allow",
		"link":         []map[string]string{{"resourceType": "Client", "id": o.id}},
	})
	return b
}

// adminClient calls fhirgate's admin API as root.
type adminClient struct {
	root, secret string
	hc           *http.Client
}

// put sends PUT /{kind}/{id} and returns the stored JSON and whether it
// was created.
func (a *adminClient) put(ctx context.Context, kind, id string, body []byte) (json.RawMessage, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.root+"/"+kind+"/"+id, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.SetBasicAuth("root", a.secret)
	req.Header.Set("Content-Type", fhir.MediaPlainJSON)
	req.Header.Set("Accept", fhir.MediaPlainJSON)
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, false, client.ResponseError(resp)
	}
	stored, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, false, err
	}
	if !json.Valid(stored) {
		return nil, false, fmt.Errorf("%s %s answered %d with a body that is not JSON", req.Method, req.URL, resp.StatusCode)
	}
	return stored, resp.StatusCode == http.StatusCreated, nil
}

// explain turns a failed admin call into the one line the user reads.
func (a *adminClient) explain(err error, kind string) error {
	var (
		he *client.HTTPError
		ne *net.OpError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("client create: interrupted")
	case errors.As(err, &he) && he.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("client create: the server refused the root secret (401 on %s %s); pass the secret the server was started with (--root-secret or %s); a server started without one has no admin API",
			he.Method, he.URL, rootSecretEnv)
	case errors.As(err, &he) && (he.StatusCode == http.StatusBadRequest || he.StatusCode == http.StatusUnprocessableEntity):
		return fmt.Errorf("client create: the server refused the %s (%d): %s; check --id, --scope and the keys", kind, he.StatusCode, he.Detail())
	case errors.As(err, &he) && (he.StatusCode == http.StatusNotFound || he.StatusCode == http.StatusMethodNotAllowed):
		return fmt.Errorf("client create: %w; check --server: it should be the FHIR base URL of a fhirgate server, e.g. http://127.0.0.1:8080/fhir", err)
	case errors.As(err, &he):
		return fmt.Errorf("client create: %w; try again later or read the server's log", err)
	case errors.As(err, &ne):
		return fmt.Errorf("client create: %w; check that the server at %s is running and reachable", err, a.root)
	}
	return fmt.Errorf("client create: %w", err)
}
