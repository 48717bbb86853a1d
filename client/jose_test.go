package client_test

import (
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
)

// These tests check the SDK's hand-written JOSE against an independent
// implementation, OpenSSL: it reads our PKCS#8 keys and verifies our
// signatures, and we read and sign with keys it generated. (jwx cannot be
// used here: its jwk package needs a module that go.sum does not list.)

func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestOpenSSLVerifiesOurSignatures(t *testing.T) {
	for _, alg := range client.Algorithms() {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			bits := 0
			if strings.HasPrefix(alg, "RS") {
				bits = 2048
			}
			k, err := client.GenerateKey(alg, bits)
			if err != nil {
				t.Fatal(err)
			}
			pemBytes, _ := k.MarshalPEM()
			os.WriteFile(filepath.Join(dir, "private.pem"), pemBytes, 0o600)
			openssl(t, dir, "pkey", "-in", "private.pem", "-pubout", "-out", "public.pem")

			jwt, err := client.Assertion{Key: k, ClientID: "c1", TokenURL: "https://as.example/token"}.Sign(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			i := strings.LastIndexByte(jwt, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(jwt[i+1:])
			if strings.HasPrefix(alg, "ES") {
				sig = rawToDER(sig) // OpenSSL wants ASN.1; JWS carries R||S
			}
			os.WriteFile(filepath.Join(dir, "input"), []byte(jwt[:i]), 0o600)
			os.WriteFile(filepath.Join(dir, "sig"), sig, 0o600)
			digest := "-sha" + alg[2:]
			out := openssl(t, dir, "dgst", digest, "-verify", "public.pem", "-signature", "sig", "input")
			if !strings.Contains(out, "Verified OK") {
				t.Fatalf("openssl: %s", out)
			}
		})
	}
}

func rawToDER(sig []byte) []byte {
	half := len(sig) / 2
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:half]), new(big.Int).SetBytes(sig[half:])})
	return der
}

func TestLoadOpenSSLKeys(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantAlg string
	}{
		{"PKCS#8 P-384", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "k.pem"}, client.ES384},
		{"SEC1 P-256 with parameters", []string{"ecparam", "-genkey", "-name", "prime256v1", "-out", "k.pem"}, client.ES256},
		{"PKCS#1 RSA", []string{"genrsa", "-traditional", "-out", "k.pem", "2048"}, client.RS384},
		{"PKCS#8 RSA", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "k.pem"}, client.RS384},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			openssl(t, dir, tt.args...)
			k, err := client.LoadKeyFile(filepath.Join(dir, "k.pem"), "")
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg() != tt.wantAlg || k.KID() != k.Thumbprint() {
				t.Errorf("alg %s kid %s", k.Alg(), k.KID())
			}
		})
	}
}
