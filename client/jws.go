package client

import (
	"crypto"
	"crypto/rand"
	_ "crypto/sha256" // register SHA-256 for crypto.SHA256.New
	_ "crypto/sha512" // register SHA-384 for crypto.SHA384.New
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// jwsHeader is the JOSE header of a client assertion
// (client-confidential-asymmetric.html#authenticating-to-the-token-endpoint):
// alg, kid and typ are required, jku is optional.
type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	Jku string `json:"jku,omitempty"`
}

// hashFor is the digest of each JWS algorithm (RFC 7518 §3.1).
func hashFor(alg string) (crypto.Hash, error) {
	switch alg {
	case RS256, ES256:
		return crypto.SHA256, nil
	case RS384, ES384:
		return crypto.SHA384, nil
	}
	return 0, fmt.Errorf("client: unsupported algorithm %q", alg)
}

// signCompact returns the JWS compact serialization (RFC 7515 §7.1) of
// claims under header, signed by k.
func (k *Key) signCompact(header jwsHeader, claims any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(c)
	sig, err := k.sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// sign signs the JWS signing input. RS* is RSASSA-PKCS1-v1_5 (RFC 7518
// §3.3): a crypto.Signer given a bare crypto.Hash as options signs PKCS #1
// v1.5. ES* signatures are the fixed-size R||S concatenation of RFC 7518
// §3.4, not the ASN.1 DER that crypto.Signer returns, so they are converted.
func (k *Key) sign(input []byte) ([]byte, error) {
	hash, err := hashFor(k.alg)
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	sig, err := k.signer.Sign(rand.Reader, digest, hash)
	if err != nil {
		return nil, fmt.Errorf("client: sign: %w", err)
	}
	if k.alg == ES256 || k.alg == ES384 {
		return derToRaw(sig, map[string]int{ES256: 32, ES384: 48}[k.alg])
	}
	return sig, nil
}

// derToRaw converts an ASN.1 ECDSA-Sig-Value to R||S, each left-padded to
// size bytes.
func derToRaw(der []byte, size int) ([]byte, error) {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("client: signer returned a malformed ECDSA signature")
	}
	if v.R.Sign() <= 0 || v.S.Sign() <= 0 || len(v.R.Bytes()) > size || len(v.S.Bytes()) > size {
		return nil, errors.New("client: signer returned an out-of-range ECDSA signature")
	}
	out := make([]byte, 2*size)
	v.R.FillBytes(out[:size])
	v.S.FillBytes(out[size:])
	return out, nil
}
