package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/smart"
)

// clientEnv are the environment variables that stand in for the client
// flags the user leaves out.
var clientEnv = map[string]string{
	"server":    "FHIRGATE_SERVER",
	"client-id": "FHIRGATE_CLIENT_ID",
	"key":       "FHIRGATE_KEY",
}

// clientFlags are the flags of every command that talks to a SMART server
// as a backend client: which server, which client, which key, which scope.
type clientFlags struct {
	cmd      string // command name, the prefix of error messages
	server   string
	clientID string
	keyPath  string
	kid      string
	alg      string
	jku      string
	scope    string
}

// addClientFlags registers the client flags on cmd.
func addClientFlags(cmd *cobra.Command, name string) *clientFlags {
	cf := &clientFlags{cmd: name}
	f := cmd.Flags()
	f.StringVar(&cf.server, "server", "", "FHIR base URL, e.g. http://127.0.0.1:8080/fhir; the token endpoint is found at BASE/.well-known/smart-configuration (env FHIRGATE_SERVER)")
	f.StringVar(&cf.clientID, "client-id", "", "client id the server registered (env FHIRGATE_CLIENT_ID)")
	f.StringVar(&cf.keyPath, "key", "", "private key: PEM (PKCS#8, PKCS#1 or SEC1) or JWK (env FHIRGATE_KEY)")
	f.StringVar(&cf.kid, "kid", "", "key id for the assertion header (default: the kid in a jwks.json next to --key, else the RFC 7638 thumbprint)")
	f.StringVar(&cf.alg, "alg", "", "signing algorithm RS384, RS256, ES384 or ES256 (default: RS384 for RSA keys, ES384 or ES256 by curve)")
	f.StringVar(&cf.jku, "jku", "", "send this jku header: it must be the jwks_uri registered for the client")
	f.StringVar(&cf.scope, "scope", "system/*.rs", "space-separated scopes to request")
	return cf
}

// tokenSource reads the environment fallbacks, checks the flags, loads the
// key and returns a token source for the server.
func (cf *clientFlags) tokenSource(cmd *cobra.Command) (*client.TokenSource, error) {
	if err := envDefaults(cmd.Flags(), clientEnv); err != nil {
		return nil, err
	}
	for _, req := range []struct{ flag, value, hint string }{
		{"server", cf.server, "the FHIR base URL, e.g. --server http://127.0.0.1:8080/fhir"},
		{"client-id", cf.clientID, "the id the server registered for your client"},
		{"key", cf.keyPath, "the private key file, e.g. --key keys/private.pem from fhirgate keygen"},
	} {
		if strings.TrimSpace(req.value) == "" {
			return nil, usageError("%s: --%s is required (or set %s): %s", cf.cmd, req.flag, clientEnv[req.flag], req.hint)
		}
	}
	key, err := client.LoadKeyFile(cf.keyPath, cf.kid)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; pass the private key that fhirgate keygen wrote (--key DIR/private.pem)", cf.cmd, err)
	}
	if cf.alg != "" {
		if key, err = client.NewKey(key.Signer(), cf.alg, key.KID()); err != nil {
			return nil, usageError("%s: --alg: %v", cf.cmd, err)
		}
	}
	ts, err := client.NewTokenSource(client.Config{
		ClientID:    cf.clientID,
		Key:         key,
		Scopes:      strings.Fields(cf.scope),
		FHIRBaseURL: strings.TrimRight(cf.server, "/"),
		JKU:         cf.jku,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, usageError("%s: %v", cf.cmd, err)
	}
	return ts, nil
}

// usageError is a mistake on the command line: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// explain turns an SDK error into the one line the user reads, ending with
// what to do about it.
func (cf *clientFlags) explain(err error) error {
	var (
		oe *smart.Error
		he *client.HTTPError
		ce *bulk.CountError
		ab *bulk.AbandonedError
		ne *net.OpError
	)
	kid := cf.kid
	if kid == "" {
		kid = "of --key"
	}
	var hint string
	switch {
	case errors.As(err, &ab) && errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted; the export job was deleted on the server, run the command again to start over", cf.cmd)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted", cf.cmd)
	case errors.Is(err, bulk.ErrMaxWait):
		hint = "raise --max-wait, or ask the server for less data (--type, --since)"
	case errors.As(err, &oe) && oe.Code == smart.ErrInvalidClient:
		hint = fmt.Sprintf("check that --client-id %s is registered with the public key (kid %s) from jwks.json, and that --server is the right one", cf.clientID, kid)
	case errors.As(err, &oe) && oe.Code == smart.ErrInvalidScope:
		hint = "ask only for scopes the client is registered for (--scope)"
	case errors.As(err, &oe) && oe.Code == smart.ErrUnauthorizedClient:
		hint = "the client is not allowed the client_credentials grant; fix its registration"
	case errors.As(err, &he) && strings.HasSuffix(he.URL, client.WellKnownPath):
		hint = "check that --server is the FHIR base URL (the one whose /.well-known/smart-configuration exists), e.g. http://127.0.0.1:8080/fhir"
	case errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden):
		hint = "the token was refused; check the client's access policy and --scope"
	case errors.As(err, &he) && he.StatusCode == http.StatusTooManyRequests:
		hint = "the server is busy (another export of this client may be running); try again later"
	case errors.As(err, &he) && he.StatusCode >= 500:
		hint = "the server failed; try again later or read its log"
	case errors.As(err, &he):
		hint = "check the command's parameters against what the server supports"
	case errors.As(err, &ce):
		hint = "the download is incomplete; run the export again"
	case errors.As(err, &ne):
		hint = fmt.Sprintf("check that the server at %s is running and reachable", cf.server)
	default:
		return fmt.Errorf("%s: %w", cf.cmd, err)
	}
	return fmt.Errorf("%s: %w; %s", cf.cmd, err, hint)
}
