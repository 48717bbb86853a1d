package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// JWK is a JSON Web Key (RFC 7517 §4) holding an RSA key (RFC 7518 §6.3) or an
// EC key on P-256 or P-384 (RFC 7518 §6.2). A public JWK has the "bare key"
// members SMART requires (client-confidential-asymmetric.html#registering-a-client):
// kty and kid, n and e for RSA, crv, x and y for EC. The private members (d, p,
// q, dp, dq, qi) are set only in a private JWK that LoadKey reads.
type JWK struct {
	// Kty is the key type, RSA or EC; Kid the key id; Alg the JWS
	// algorithm; Use and KeyOps say what the key is for ("sig", ["verify"]).
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid,omitempty"`
	Alg    string   `json:"alg,omitempty"`
	Use    string   `json:"use,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`

	// N and E are the RSA modulus and exponent (base64url).
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`

	// Crv, X and Y are the EC curve and point (base64url, fixed size).
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`

	// D is the private exponent or scalar; P, Q, DP, DQ and QI the RSA
	// primes and CRT values. They are empty in a public JWK.
	D  string `json:"d,omitempty"`
	P  string `json:"p,omitempty"`
	Q  string `json:"q,omitempty"`
	DP string `json:"dp,omitempty"`
	DQ string `json:"dq,omitempty"`
	QI string `json:"qi,omitempty"`
}

// JWKS is a JSON Web Key Set (RFC 7517 §5): the document a client registers
// with an authorization server, inline or behind a jwks_uri.
type JWKS struct {
	// Keys are the keys of the set.
	Keys []JWK `json:"keys"`
}

// PublicJWKS returns the key set that publishes the public halves of keys.
func PublicJWKS(keys ...*Key) JWKS {
	set := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return set
}

// IsPrivate reports whether j carries a private key.
func (j JWK) IsPrivate() bool { return j.D != "" }

// PublicKey decodes the public key of j: an *rsa.PublicKey or an
// *ecdsa.PublicKey.
func (j JWK) PublicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "RSA":
		return j.rsaPublic()
	case "EC":
		return j.ecPublic()
	case "":
		return nil, errors.New("jwk: missing kty")
	default:
		return nil, fmt.Errorf("jwk: unsupported kty %q (want RSA or EC)", j.Kty)
	}
}

// Thumbprint is the RFC 7638 thumbprint of j's public key: base64url of the
// SHA-256 of its required members in lexicographic order.
func (j JWK) Thumbprint() (string, error) {
	pub, err := j.PublicKey()
	if err != nil {
		return "", err
	}
	return thumbprint(pub)
}

func (j JWK) rsaPublic() (*rsa.PublicKey, error) {
	n, err := decodeBigInt("n", j.N)
	if err != nil {
		return nil, err
	}
	e, err := decodeBigInt("e", j.E)
	if err != nil {
		return nil, err
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("jwk: RSA exponent e out of range")
	}
	if n.BitLen() < minRSABits {
		return nil, fmt.Errorf("jwk: RSA key of %d bits; at least %d are required", n.BitLen(), minRSABits)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func (j JWK) ecPublic() (*ecdsa.PublicKey, error) {
	curve, size, err := curveByName(j.Crv)
	if err != nil {
		return nil, err
	}
	x, err := decodeFixed("x", j.X, size)
	if err != nil {
		return nil, err
	}
	y, err := decodeFixed("y", j.Y, size)
	if err != nil {
		return nil, err
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("jwk: EC point is not on %s: %w", j.Crv, err)
	}
	return pub, nil
}

// privateKey decodes the private key of j.
func (j JWK) privateKey() (crypto.Signer, error) {
	if !j.IsPrivate() {
		return nil, errors.New("jwk: not a private key (no d)")
	}
	switch j.Kty {
	case "RSA":
		return j.rsaPrivate()
	case "EC":
		return j.ecPrivate()
	}
	_, err := j.PublicKey() // reports the kty problem
	return nil, err
}

func (j JWK) rsaPrivate() (*rsa.PrivateKey, error) {
	pub, err := j.rsaPublic()
	if err != nil {
		return nil, err
	}
	if j.P == "" || j.Q == "" {
		return nil, errors.New("jwk: RSA private key without the primes p and q is not supported")
	}
	d, err := decodeBigInt("d", j.D)
	if err != nil {
		return nil, err
	}
	p, err := decodeBigInt("p", j.P)
	if err != nil {
		return nil, err
	}
	q, err := decodeBigInt("q", j.Q)
	if err != nil {
		return nil, err
	}
	priv := &rsa.PrivateKey{PublicKey: *pub, D: d, Primes: []*big.Int{p, q}}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("jwk: inconsistent RSA private key: %w", err)
	}
	priv.Precompute()
	return priv, nil
}

func (j JWK) ecPrivate() (*ecdsa.PrivateKey, error) {
	pub, err := j.ecPublic()
	if err != nil {
		return nil, err
	}
	curve, size, _ := curveByName(j.Crv)
	d, err := decodeFixed("d", j.D, size)
	if err != nil {
		return nil, err
	}
	priv, err := ecdsa.ParseRawPrivateKey(curve, d)
	if err != nil {
		return nil, fmt.Errorf("jwk: bad EC private key: %w", err)
	}
	if !priv.PublicKey.Equal(pub) {
		return nil, errors.New("jwk: EC private key d does not match x and y")
	}
	return priv, nil
}

// publicJWK renders pub as a public JWK without kid or alg.
func publicJWK(pub crypto.PublicKey) (JWK, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			return JWK{}, fmt.Errorf("jwk: %w", err)
		}
		size := (len(raw) - 1) / 2
		return JWK{Kty: "EC", Crv: pub.Curve.Params().Name, X: b64(raw[1 : 1+size]), Y: b64(raw[1+size:])}, nil
	default:
		return JWK{}, fmt.Errorf("jwk: unsupported public key type %T", pub)
	}
}

// thumbprint computes the RFC 7638 §3 thumbprint of pub. The members are
// written in lexicographic order with no whitespace, as §3.3 requires; the
// struct field order below is that order.
func thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	var canonical any
	switch j.Kty {
	case "RSA":
		canonical = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	default:
		canonical = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y}
	}
	b, err := json.Marshal(canonical)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return b64(sum[:]), nil
}

func curveByName(crv string) (elliptic.Curve, int, error) {
	switch crv {
	case "P-256":
		return elliptic.P256(), 32, nil
	case "P-384":
		return elliptic.P384(), 48, nil
	case "":
		return nil, 0, errors.New("jwk: EC key without crv")
	default:
		return nil, 0, fmt.Errorf("jwk: unsupported curve %q (want P-256 or P-384)", crv)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeB64(name, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("jwk: missing %s", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("jwk: %s is not base64url: %w", name, err)
	}
	return b, nil
}

func decodeBigInt(name, s string) (*big.Int, error) {
	b, err := decodeB64(name, s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// decodeFixed decodes an EC coordinate or scalar, which RFC 7518 §6.2.1.2
// requires to be exactly the curve's size; a shorter value is left-padded
// for leniency towards encoders that strip leading zeros.
func decodeFixed(name, s string, size int) ([]byte, error) {
	b, err := decodeB64(name, s)
	if err != nil {
		return nil, err
	}
	if len(b) > size {
		return nil, fmt.Errorf("jwk: %s is %d bytes; the curve needs %d", name, len(b), size)
	}
	out := make([]byte, size)
	copy(out[size-len(b):], b)
	return out, nil
}
