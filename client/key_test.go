package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg     string
		bits    int
		wantKty string
		wantErr string
	}{
		{alg: RS384, bits: 2048, wantKty: "RSA"},
		{alg: RS256, bits: 2048, wantKty: "RSA"},
		{alg: ES384, wantKty: "EC"},
		{alg: ES256, wantKty: "EC"},
		{alg: RS384, bits: 1024, wantErr: "RSA key size 1024 is not one of 2048, 3072, 4096"},
		{alg: ES384, bits: 2048, wantErr: "a key size applies to RSA only, not ES384"},
		{alg: "HS256", wantErr: `unsupported algorithm "HS256"`},
		{alg: "none", wantErr: `unsupported algorithm "none"`},
	}
	for _, tt := range tests {
		t.Run(tt.alg+"/"+itoa(tt.bits), func(t *testing.T) {
			k, err := GenerateKey(tt.alg, tt.bits)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg() != tt.alg || k.KID() != k.Thumbprint() {
				t.Errorf("alg %s kid %s, want %s and the thumbprint %s", k.Alg(), k.KID(), tt.alg, k.Thumbprint())
			}
			j := k.PublicJWK()
			if j.Kty != tt.wantKty || j.IsPrivate() || j.Kid != k.KID() || j.Alg != tt.alg || j.Use != "sig" || j.KeyOps[0] != "verify" {
				t.Errorf("public JWK = %+v", j)
			}
			// PEM round trip keeps the key and, through the thumbprint, the kid.
			pemBytes, err := k.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pemBytes), "-----BEGIN PRIVATE KEY-----") {
				t.Errorf("not PKCS#8: %.40s", pemBytes)
			}
			back, err := LoadKey(pemBytes, "")
			if err != nil {
				t.Fatal(err)
			}
			// PEM holds no alg: RSA keys read back as RS384, the SMART default.
			wantAlg := map[string]string{RS256: RS384}[tt.alg]
			if wantAlg == "" {
				wantAlg = tt.alg
			}
			if back.KID() != k.KID() || back.Alg() != wantAlg || !back.Signer().(interface{ Equal(crypto.PrivateKey) bool }).Equal(k.Signer()) {
				t.Errorf("PEM round trip changed the key: kid %s alg %s", back.KID(), back.Alg())
			}
		})
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// TestThumbprintRFC7638 checks the worked example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	j := JWK{Kty: "RSA", E: "AQAB", N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
	got, err := j.Thumbprint()
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

func TestNewKeyRefusals(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey := testRSA(t)
	tests := []struct {
		name string
		key  *Key
		err  error
		want string
	}{
		{"small RSA", nil, mustErr(NewKey(small, "", "")), "RSA key of 1024 bits; at least 2048 are required"},
		{"P-521", nil, mustErr(NewKey(p521, "", "")), "EC curve P-521 is not supported"},
		{"ES384 on P-256", nil, mustErr(NewKey(p256, ES384, "")), `algorithm "ES384" does not fit a P-256 key (use ES256)`},
		{"ES384 on RSA", nil, mustErr(NewKey(rsaKey, ES384, "")), `algorithm "ES384" does not fit an RSA key`},
		{"nil", nil, mustErr(NewKey(nil, "", "")), "nil signer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", tt.err, tt.want)
			}
		})
	}
}

func mustErr(_ *Key, err error) error { return err }

var cachedRSA *rsa.PrivateKey

func testRSA(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	if cachedRSA == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		cachedRSA = k
	}
	return cachedRSA
}

func TestLoadKeyFormats(t *testing.T) {
	rsaKey := testRSA(t)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	sec1DER, _ := x509.MarshalECPrivateKey(ecKey)
	sec1 := append([]byte("-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n"),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1DER})...)
	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	k1, _ := NewKey(rsaKey, "", "rsa-1")
	k2, _ := NewKey(ecKey, "", "ec-1")
	privSet := JWKS{Keys: []JWK{privateJWK(t, k1), privateJWK(t, k2)}}
	setJSON, _ := json.Marshal(privSet)
	oneJSON, _ := json.Marshal(privateJWK(t, k2))
	pubJSON, _ := json.Marshal(PublicJWKS(k1))

	tests := []struct {
		name    string
		data    []byte
		kid     string
		wantKID string
		wantAlg string
		wantErr string
	}{
		{name: "PKCS#1", data: pkcs1, wantKID: k1.Thumbprint(), wantAlg: RS384},
		{name: "PKCS#1 with kid", data: pkcs1, kid: "mine", wantKID: "mine", wantAlg: RS384},
		{name: "SEC1 after EC PARAMETERS", data: sec1, wantKID: k2.Thumbprint(), wantAlg: ES384},
		{name: "private JWK", data: oneJSON, wantKID: "ec-1", wantAlg: ES384},
		{name: "JWKS picks by kid", data: setJSON, kid: "rsa-1", wantKID: "rsa-1", wantAlg: RS384},
		{name: "JWKS needs a kid", data: setJSON, wantErr: "2 private keys; choose one with a kid"},
		{name: "JWKS unknown kid", data: setJSON, kid: "nope", wantErr: `no private key with kid "nope"`},
		{name: "public JWKS", data: pubJSON, wantErr: "no private key: the JWK has no d member"},
		{name: "public PEM", data: pubPEM, wantErr: "found a PUBLIC KEY, not a private key"},
		{name: "encrypted", data: []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), wantErr: "the private key is encrypted"},
		{name: "garbage", data: []byte("hello"), wantErr: "no private key found"},
		{name: "bad JSON", data: []byte("{"), wantErr: "key is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKey(tt.data, tt.kid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.KID() != tt.wantKID || k.Alg() != tt.wantAlg {
				t.Errorf("kid %s alg %s, want %s %s", k.KID(), k.Alg(), tt.wantKID, tt.wantAlg)
			}
		})
	}
}

// privateJWK renders k with its private members, as another tool would.
func privateJWK(t *testing.T, k *Key) JWK {
	t.Helper()
	j := k.PublicJWK()
	switch p := k.Signer().(type) {
	case *rsa.PrivateKey:
		j.D, j.P, j.Q = b64(p.D.Bytes()), b64(p.Primes[0].Bytes()), b64(p.Primes[1].Bytes())
	case *ecdsa.PrivateKey:
		d, _ := p.Bytes()
		j.D = b64(d)
	}
	return j
}

func TestLoadKeyFileFindsKIDInJWKS(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateKey(ES384, 0)
	if err != nil {
		t.Fatal(err)
	}
	k = k.WithKID("registered-kid")
	pemBytes, _ := k.MarshalPEM()
	other, _ := GenerateKey(ES256, 0)
	set, _ := json.Marshal(PublicJWKS(other.WithKID("other"), k))
	os.WriteFile(filepath.Join(dir, "private.pem"), pemBytes, 0o600)
	os.WriteFile(filepath.Join(dir, JWKSFileName), set, 0o644)

	got, err := LoadKeyFile(filepath.Join(dir, "private.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.KID() != "registered-kid" {
		t.Errorf("kid = %q, want the one in jwks.json", got.KID())
	}
	got, _ = LoadKeyFile(filepath.Join(dir, "private.pem"), "explicit")
	if got.KID() != "explicit" {
		t.Errorf("kid = %q, want the explicit one", got.KID())
	}
	os.Remove(filepath.Join(dir, JWKSFileName))
	got, _ = LoadKeyFile(filepath.Join(dir, "private.pem"), "")
	if got.KID() != k.Thumbprint() {
		t.Errorf("kid = %q, want the thumbprint without jwks.json", got.KID())
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing.pem"), ""); err == nil || !strings.Contains(err.Error(), "read key") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestJWKRefusals(t *testing.T) {
	tests := []struct {
		name string
		jwk  JWK
		want string
	}{
		{"no kty", JWK{}, "missing kty"},
		{"oct", JWK{Kty: "oct"}, `unsupported kty "oct"`},
		{"EC bad curve", JWK{Kty: "EC", Crv: "P-521"}, `unsupported curve "P-521"`},
		{"EC off curve", JWK{Kty: "EC", Crv: "P-256", X: b64(make([]byte, 32)), Y: b64(make([]byte, 32))}, "EC point is not on P-256"},
		{"RSA small", JWK{Kty: "RSA", N: b64(make([]byte, 128)), E: "AQAB"}, "at least 2048 are required"},
		{"RSA even e", JWK{Kty: "RSA", N: b64([]byte{1}), E: "Ag"}, "exponent e out of range"},
		{"not base64", JWK{Kty: "RSA", N: "!!", E: "AQAB"}, "n is not base64url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.jwk.PublicKey()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
