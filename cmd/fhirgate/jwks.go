package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/client"
)

func init() { register(newJWKSCmd) }

// newJWKSCmd builds `fhirgate jwks` and `fhirgate jwks serve`.
func newJWKSCmd() *cobra.Command {
	var (
		keys []string
		kid  string
	)
	cmd := &cobra.Command{
		Use:   "jwks --key private.pem [--kid KID]",
		Short: "Print the public JWK Set of private keys, or serve it (jwks serve)",
		Long: `Print the public JWK Set of one or more private keys: the document to
register with a SMART server, inline or behind a jwks_uri. Repeat --key to
publish several keys, for example the current and the next one while
rotating.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set, err := publicSet(keys, kid)
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(set, "", "  ")
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "private key file (PEM or JWK); repeat for several keys")
	cmd.Flags().StringVar(&kid, "kid", "", "key id (default: the kid in a jwks.json next to the key, else the RFC 7638 thumbprint); only with one --key")
	cmd.AddCommand(newJWKSServeCmd())
	return cmd
}

// publicSet loads the keys and returns their public JWK Set.
func publicSet(paths []string, kid string) (client.JWKS, error) {
	if len(paths) == 0 {
		return client.JWKS{}, usageError("jwks: --key is required: the private key whose public half to publish, e.g. --key keys/private.pem")
	}
	if kid != "" && len(paths) > 1 {
		return client.JWKS{}, usageError("jwks: --kid applies to a single --key")
	}
	var ks []*client.Key
	for _, p := range paths {
		k, err := client.LoadKeyFile(p, kid)
		if err != nil {
			return client.JWKS{}, fmt.Errorf("jwks: %w; pass a private key file such as the private.pem of fhirgate keygen", err)
		}
		ks = append(ks, k)
	}
	return client.PublicJWKS(ks...), nil
}

// newJWKSServeCmd builds `fhirgate jwks serve`: a development jwks_uri.
func newJWKSServeCmd() *cobra.Command {
	var (
		addr, jwksPath, kid string
		keys                []string
		maxAge              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve --addr HOST:PORT --key private.pem | --jwks jwks.json",
		Short: "Serve a public JWK Set at /.well-known/jwks.json for a client's jwks_uri during development",
		Long: `Serve the public JWK Set of --key (or the file --jwks) over HTTP at
/.well-known/jwks.json and /jwks.json, with a Cache-Control header that tells
the authorization server how long it may cache it. Stop it with Ctrl-C.

This is for development: SMART requires a jwks_uri to be TLS-protected, so
production keys belong behind HTTPS. A fhirgate server accepts a loopback
jwks_uri only with --allow-private-jwks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := jwksDocument(keys, kid, jwksPath)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("jwks serve: %w; choose another --addr", err)
			}
			srv := &http.Server{Handler: jwksHandler(body, maxAge), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "serving the JWK Set at http://%s/.well-known/jwks.json (Ctrl-C stops)\n", ln.Addr())
			return serveUntilDone(cmd.Context(), srv, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8081", "listen address HOST:PORT")
	f.StringArrayVar(&keys, "key", nil, "private key whose public half to serve; repeat for several keys")
	f.StringVar(&kid, "kid", "", "key id, with a single --key")
	f.StringVar(&jwksPath, "jwks", "", "serve this public JWK Set file instead of --key")
	f.DurationVar(&maxAge, "max-age", 5*time.Minute, "Cache-Control max-age of the response")
	cmd.MarkFlagsMutuallyExclusive("key", "jwks")
	return cmd
}

// jwksDocument renders the set to serve, refusing any private key.
func jwksDocument(keys []string, kid, path string) ([]byte, error) {
	var set client.JWKS
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("jwks serve: %w", err)
		}
		if err := json.Unmarshal(data, &set); err != nil || len(set.Keys) == 0 {
			return nil, fmt.Errorf("jwks serve: %s is not a JWK Set with keys; write one with fhirgate keygen or fhirgate jwks", path)
		}
		for _, k := range set.Keys {
			if k.IsPrivate() {
				return nil, fmt.Errorf("jwks serve: %s holds a private key (kid %q); serve only public keys (fhirgate jwks --key FILE prints them)", path, k.Kid)
			}
			if _, err := k.PublicKey(); err != nil {
				return nil, fmt.Errorf("jwks serve: %s: key %q: %w", path, k.Kid, err)
			}
		}
	} else {
		var err error
		if set, err = publicSet(keys, kid); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(set, "", "  ")
}

// jwksHandler answers GET and HEAD for the two JWK Set paths. The
// authorization server caches the set per Cache-Control (SMART
// client-confidential-asymmetric: the client SHOULD send it).
func jwksHandler(body []byte, maxAge time.Duration) http.Handler {
	mux := http.NewServeMux()
	serve := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	}
	mux.HandleFunc("GET /.well-known/jwks.json", serve)
	mux.HandleFunc("GET /jwks.json", serve)
	return mux
}

// serveUntilDone serves until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("jwks serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("jwks serve: %w", err)
	}
	return nil
}
