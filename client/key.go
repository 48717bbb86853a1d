package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// JWS algorithms a Key signs with. SMART clients SHALL support RS384 and
// ES384 (client-confidential-asymmetric.html#authenticating-to-the-token-endpoint);
// RS256 and ES256 are offered for servers that accept only those.
const (
	RS384 = "RS384"
	ES384 = "ES384"
	RS256 = "RS256"
	ES256 = "ES256"
)

// Algorithms lists the JWS algorithms this package signs with.
func Algorithms() []string { return []string{RS384, ES384, RS256, ES256} }

// DefaultRSABits is the RSA modulus size GenerateKey uses when none is
// given: 3072 bits stay within NIST SP 800-57 recommendations past 2030.
const DefaultRSABits = 3072

// minRSABits is the smallest RSA key accepted (RFC 7518 §3.3 requires 2048).
const minRSABits = 2048

// JWKSFileName is the file next to a PEM key in which LoadKeyFile looks up
// the key's kid; keygen writes it.
const JWKSFileName = "jwks.json"

// Key is a client's private signing key together with the JWS algorithm
// (alg) and key id (kid) that go into the header of every assertion it
// signs. The private key is any crypto.Signer whose public key is RSA
// (at least 2048 bits) or ECDSA on P-256 or P-384, so keys held in an HSM or
// a cloud KMS work as well as keys in memory.
type Key struct {
	signer crypto.Signer
	alg    string
	kid    string
}

// NewKey wraps signer. An empty alg picks RS384 for RSA, ES384 for P-384 and
// ES256 for P-256; an empty kid is the RFC 7638 thumbprint of the public key,
// which is what most servers expect when nothing else was agreed.
func NewKey(signer crypto.Signer, alg, kid string) (*Key, error) {
	if signer == nil {
		return nil, errors.New("client: nil signer")
	}
	alg, err := checkAlg(signer.Public(), alg)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		if kid, err = thumbprint(signer.Public()); err != nil {
			return nil, err
		}
	}
	return &Key{signer: signer, alg: alg, kid: kid}, nil
}

// GenerateKey creates a new key pair for alg (RS384, RS256, ES384 or
// ES256). rsaBits is the RSA modulus size, 2048, 3072 or 4096; zero means
// DefaultRSABits. It must be zero for EC algorithms. The kid is the RFC 7638
// thumbprint; use WithKID to choose another.
func GenerateKey(alg string, rsaBits int) (*Key, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case RS384, RS256:
		if rsaBits == 0 {
			rsaBits = DefaultRSABits
		}
		if !slices.Contains([]int{2048, 3072, 4096}, rsaBits) {
			return nil, fmt.Errorf("client: RSA key size %d is not one of 2048, 3072, 4096", rsaBits)
		}
		signer, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES384, ES256:
		if rsaBits != 0 {
			return nil, fmt.Errorf("client: a key size applies to RSA only, not %s", alg)
		}
		curve := elliptic.P384()
		if alg == ES256 {
			curve = elliptic.P256()
		}
		signer, err = ecdsa.GenerateKey(curve, rand.Reader)
	default:
		return nil, fmt.Errorf("client: unsupported algorithm %q (want one of %v)", alg, Algorithms())
	}
	if err != nil {
		return nil, fmt.Errorf("client: generate %s key: %w", alg, err)
	}
	return NewKey(signer, alg, "")
}

// Alg is the JWS algorithm the key signs with.
func (k *Key) Alg() string { return k.alg }

// KID is the key id put in the JWS header.
func (k *Key) KID() string { return k.kid }

// Signer is the private key.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Public is the public half of the key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// WithKID returns a copy of k with another key id.
func (k *Key) WithKID(kid string) *Key {
	c := *k
	c.kid = kid
	return &c
}

// Thumbprint is the RFC 7638 thumbprint of the public key.
func (k *Key) Thumbprint() string {
	t, _ := thumbprint(k.Public()) // cannot fail: NewKey checked the key type
	return t
}

// PublicJWK is the public key as the JWK a client registers: kty, kid, alg,
// the bare key members, and both "use":"sig" and "key_ops":["verify"]. RFC
// 7517 §4.3 allows both when they agree; some servers filter keys on one,
// some on the other (the SMART reference bulk-data-server insists on
// key_ops), so publishing both registers everywhere.
func (k *Key) PublicJWK() JWK {
	j, _ := publicJWK(k.Public()) // cannot fail: NewKey checked the key type
	j.Kid, j.Alg, j.Use, j.KeyOps = k.kid, k.alg, "sig", []string{"verify"}
	return j
}

// MarshalPEM encodes the private key as a PKCS#8 "PRIVATE KEY" PEM block
// (RFC 5958, RFC 7468 §10), readable by OpenSSL and every JOSE library. It
// fails for keys that are not in memory (HSM or KMS signers).
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, fmt.Errorf("client: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadKey reads a private key from data: PEM (PKCS#8 "PRIVATE KEY", PKCS#1
// "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY"), a private JWK, or a JWK Set
// holding private keys. kid selects a key from a set and overrides the kid of
// the source; when both are empty the kid is the RFC 7638 thumbprint. The
// algorithm comes from a JWK's alg member or from the key type (see NewKey).
func LoadKey(data []byte, kid string) (*Key, error) {
	signer, alg, srcKID, err := parseKey(data, kid)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		kid = srcKID
	}
	return NewKey(signer, alg, kid)
}

// LoadKeyFile reads a private key from a file as LoadKey does. When neither
// kid nor the file names a key id, and a jwks.json next to the file
// publishes this key's public half (as the keygen command writes them), the
// kid and alg of that entry are used; otherwise the kid is the thumbprint.
func LoadKeyFile(path, kid string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: read key: %w", err)
	}
	signer, alg, srcKID, err := parseKey(data, kid)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", path, err)
	}
	if kid == "" {
		kid = srcKID
	}
	if kid == "" {
		if j, ok := findPublic(filepath.Join(filepath.Dir(path), JWKSFileName), signer.Public()); ok {
			kid = j.Kid
			if alg == "" {
				alg = j.Alg
			}
		}
	}
	k, err := NewKey(signer, alg, kid)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", path, err)
	}
	return k, nil
}

// findPublic looks for pub in the JWK Set file at path. A missing or
// unreadable file is not an error: the lookup is a convenience.
func findPublic(path string, pub crypto.PublicKey) (JWK, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return JWK{}, false
	}
	var set JWKS
	if json.Unmarshal(data, &set) != nil {
		return JWK{}, false
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, j := range set.Keys {
		p, err := j.PublicKey()
		if err == nil && j.Kid != "" && p.(equaler).Equal(pub) {
			return j, true
		}
	}
	return JWK{}, false
}

// parseKey decodes PEM or JSON key material.
func parseKey(data []byte, kid string) (signer crypto.Signer, alg, srcKID string, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return parseJSONKey(trimmed, kid)
	}
	signer, err = parsePEMKey(data)
	return signer, "", "", err
}

func parsePEMKey(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no private key found: expected a PEM \"PRIVATE KEY\" block or a private JWK")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; decrypt it first (openssl pkcs8 -in KEY -out plain.pem)")
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, fmt.Errorf("found a %s, not a private key", block.Type)
		default:
			continue // e.g. "EC PARAMETERS" before the key
		}
		if err != nil {
			return nil, fmt.Errorf("bad %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

// parseJSONKey reads a private JWK or picks one private key out of a JWK Set.
func parseJSONKey(data []byte, kid string) (crypto.Signer, string, string, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, "", "", fmt.Errorf("key is not valid JSON: %w", err)
	}
	var candidates []JWK
	if probe.Keys != nil {
		var set JWKS
		if err := json.Unmarshal(data, &set); err != nil {
			return nil, "", "", fmt.Errorf("bad JWK Set: %w", err)
		}
		candidates = set.Keys
	} else {
		var j JWK
		if err := json.Unmarshal(data, &j); err != nil {
			return nil, "", "", fmt.Errorf("bad JWK: %w", err)
		}
		candidates = []JWK{j}
	}
	j, err := pickPrivate(candidates, kid)
	if err != nil {
		return nil, "", "", err
	}
	signer, err := j.privateKey()
	if err != nil {
		return nil, "", "", err
	}
	return signer, j.Alg, j.Kid, nil
}

func pickPrivate(keys []JWK, kid string) (JWK, error) {
	var found []JWK
	for _, j := range keys {
		if j.IsPrivate() && (kid == "" || len(keys) == 1 || j.Kid == kid) {
			found = append(found, j)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && kid != "":
		return JWK{}, fmt.Errorf("no private key with kid %q", kid)
	case len(found) == 0:
		return JWK{}, errors.New("no private key: the JWK has no d member (is this the public JWKS?)")
	default:
		return JWK{}, fmt.Errorf("%d private keys; choose one with a kid", len(found))
	}
}

// checkAlg validates alg against the public key, or picks the default.
func checkAlg(pub crypto.PublicKey, alg string) (string, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return "", fmt.Errorf("client: RSA key of %d bits; at least %d are required", pub.N.BitLen(), minRSABits)
		}
		switch alg {
		case "":
			return RS384, nil
		case RS384, RS256:
			return alg, nil
		}
		return "", fmt.Errorf("client: algorithm %q does not fit an RSA key (use RS384 or RS256)", alg)
	case *ecdsa.PublicKey:
		want := map[string]string{"P-256": ES256, "P-384": ES384}[pub.Curve.Params().Name]
		if want == "" {
			return "", fmt.Errorf("client: EC curve %s is not supported (use P-384 or P-256)", pub.Curve.Params().Name)
		}
		if alg != "" && alg != want {
			return "", fmt.Errorf("client: algorithm %q does not fit a %s key (use %s)", alg, pub.Curve.Params().Name, want)
		}
		return want, nil
	default:
		return "", fmt.Errorf("client: unsupported key type %T (want RSA or ECDSA)", pub)
	}
}
