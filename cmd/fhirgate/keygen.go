package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/client"
)

func init() { register(newKeygenCmd) }

// Names of the files keygen writes.
const (
	privateKeyFile = "private.pem"
	jwksFile       = client.JWKSFileName
)

// newKeygenCmd builds `fhirgate keygen`: a key pair for a backend client.
func newKeygenCmd() *cobra.Command {
	var (
		alg, kid, out string
		bits          int
		force         bool
	)
	cmd := &cobra.Command{
		Use:   "keygen --alg RS384|ES384 --kid KID --out DIR",
		Short: "Generate a key pair for a SMART backend client: DIR/private.pem and DIR/jwks.json",
		Long: `Generate a key pair for a SMART Backend Services client.

Writes DIR/private.pem, the private key as PKCS#8 PEM (mode 0600: keep it
secret), and DIR/jwks.json, the public JWK Set to register with the server
(inline as the client's jwks, or served at its jwks_uri, for example with
fhirgate jwks serve).

--alg is RS384 (default), ES384 or ES256; SMART servers must accept RS384
or ES384. --bits sets the RSA size (2048, 3072 or 4096). --kid defaults to
the key's RFC 7638 thumbprint; token and export find a custom kid in the
jwks.json next to the key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("keygen: --out is required: name the directory for private.pem and jwks.json, e.g. --out ./keys")
			}
			if alg == client.RS256 {
				return usageError("keygen: --alg must be RS384, ES384 or ES256; SMART clients use RS384 or ES384")
			}
			key, err := client.GenerateKey(alg, bits)
			if err != nil {
				return usageError("keygen: %v; use --alg RS384, ES384 or ES256 and --bits only with RS384", err)
			}
			if kid != "" {
				key = key.WithKID(kid)
			}
			if err := writeKeyFiles(out, key, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (keep it secret) and %s (register it with the server)\nkid %s, alg %s\n",
				filepath.Join(out, privateKeyFile), filepath.Join(out, jwksFile), key.KID(), key.Alg())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&alg, "alg", client.RS384, "signing algorithm: RS384, ES384 or ES256")
	f.IntVar(&bits, "bits", 0, fmt.Sprintf("RSA key size: 2048, 3072 or 4096 (default %d)", client.DefaultRSABits))
	f.StringVar(&kid, "kid", "", "key id (default: the RFC 7638 thumbprint of the key)")
	f.StringVar(&out, "out", "", "directory to write private.pem and jwks.json to (created if missing)")
	f.BoolVar(&force, "force", false, "replace existing files")
	return cmd
}

// writeKeyFiles writes the private key and the public JWK Set. The private
// key file is created with mode 0600 and never replaces a file unless force
// is set: overwriting a registered key locks its client out.
func writeKeyFiles(dir string, key *client.Key, force bool) error {
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	jwks, err := json.MarshalIndent(client.PublicJWKS(key), "", "  ")
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("keygen: %w; check that --out %s is a directory you can write to", err, dir)
	}
	privPath, jwksPath := filepath.Join(dir, privateKeyFile), filepath.Join(dir, jwksFile)
	if !force {
		for _, p := range []string{privPath, jwksPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("keygen: %s already exists; choose another --out, or pass --force to replace it (clients registered with the old key stop working)", p)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("keygen: %w", err)
			}
		}
	}
	if err := writeFileAtomic(privPath, pemBytes, 0o600); err != nil {
		return fmt.Errorf("keygen: %w; check that --out %s is writable", err, dir)
	}
	if err := writeFileAtomic(jwksPath, append(jwks, '\n'), 0o644); err != nil {
		return fmt.Errorf("keygen: %w; check that --out %s is writable", err, dir)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file with mode perm in the same
// directory and renames it into place, so that a reader never sees half a key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
