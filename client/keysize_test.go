package client_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
)

// TestRSAKeySizesRoundTrip: keys of every RSA size GenerateKey offers
// beyond the default survive the round trip a client makes: generate,
// write the PEM and the public JWKS (as keygen does), load the key file
// back, sign an assertion, and verify it with the public key taken from
// the written JWKS alone, decoded here by hand and checked with crypto/rsa
// (RFC 7518 §3.3: RS384 is RSASSA-PKCS1-v1_5 with SHA-384; §6.3.1 the n
// and e members).
func TestRSAKeySizesRoundTrip(t *testing.T) {
	for _, bits := range []int{3072, 4096} {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			if bits == 4096 && testing.Short() {
				t.Skip("generating a 4096-bit RSA key takes seconds; skipped with -short")
			}
			t.Parallel()
			k, err := client.GenerateKey(client.RS384, bits)
			if err != nil {
				t.Fatal(err)
			}
			if n := k.Public().(*rsa.PublicKey).N.BitLen(); n != bits {
				t.Fatalf("modulus of %d bits, want %d", n, bits)
			}
			dir := t.TempDir()
			pemBytes, err := k.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			jwks, err := json.Marshal(client.PublicJWKS(k))
			if err != nil {
				t.Fatal(err)
			}
			keyPath := filepath.Join(dir, "private.pem")
			if err := os.WriteFile(keyPath, pemBytes, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, client.JWKSFileName), jwks, 0o644); err != nil {
				t.Fatal(err)
			}
			loaded, err := client.LoadKeyFile(keyPath, "")
			if err != nil {
				t.Fatal(err)
			}
			if loaded.KID() != k.KID() || loaded.Alg() != client.RS384 {
				t.Fatalf("loaded kid %s alg %s, want %s RS384", loaded.KID(), loaded.Alg(), k.KID())
			}
			jwt, err := client.Assertion{Key: loaded, ClientID: "c1", TokenURL: "https://as.example/token"}.Sign(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			pub, hdr := jwksKey(t, filepath.Join(dir, client.JWKSFileName), jwt)
			if hdr.Alg != "RS384" {
				t.Fatalf("header alg %q", hdr.Alg)
			}
			if err := verifyRS384(pub, jwt); err != nil {
				t.Fatalf("the assertion does not verify with the published key: %v", err)
			}
			// The check can fail: another payload under the same signature does not verify.
			parts := strings.Split(jwt, ".")
			forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"evil"}`)) + "." + parts[2]
			if err := verifyRS384(pub, forged); err == nil {
				t.Fatal("a forged payload verified")
			}
		})
	}
}

type jwsHeader struct{ Alg, Kid string }

// jwksKey reads the JWKS file and returns the RSA key the JWS header's kid
// names, decoded from n and e without the SDK.
func jwksKey(t *testing.T, path, jwt string) (*rsa.PublicKey, jwsHeader) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h jwsHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kty, Kid, Alg, N, E, D string }
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	for _, j := range set.Keys {
		if j.Kid != h.Kid {
			continue
		}
		if j.Kty != "RSA" || j.Alg != "RS384" || j.D != "" {
			t.Fatalf("published JWK kty %s alg %s private %v", j.Kty, j.Alg, j.D != "")
		}
		n, err1 := base64.RawURLEncoding.DecodeString(j.N)
		e, err2 := base64.RawURLEncoding.DecodeString(j.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("n or e is not base64url: %v %v", err1, err2)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, h
	}
	t.Fatalf("no key %q in %s", h.Kid, data)
	return nil, h
}

func verifyRS384(pub *rsa.PublicKey, jwt string) error {
	i := strings.LastIndexByte(jwt, '.')
	sig, err := base64.RawURLEncoding.DecodeString(jwt[i+1:])
	if err != nil {
		return err
	}
	sum := sha512.Sum384([]byte(jwt[:i]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA384, sum[:], sig)
}
