package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Algorithms is the allow-list of JWS algorithms for client assertions:
// SMART client-confidential-asymmetric asks servers to validate RS384 or
// ES384 and lets them support more. "none" and the HMAC family are never
// accepted (a client's public key must not double as an HMAC secret).
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// AlgAllowed reports whether alg is on the allow-list.
func AlgAllowed(alg string) bool { return slices.Contains(Algorithms, alg) }

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-57: 2048).
const MinRSABits = 2048

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Errors of key validation and selection.
var (
	ErrPrivateKey   = errors.New("JWK holds private key material")
	ErrInvalidKey   = errors.New("invalid JWK")
	ErrNoKey        = errors.New("no key matches kid and alg")
	ErrAmbiguousKey = errors.New("more than one key matches kid and alg")
)

// KeyError is a validation failure of one JWK; Member names the JWK
// member at fault ("kty", "n", "d", ...) so a registration error can point
// at it.
type KeyError struct {
	Member string
	Reason string
	Err    error // ErrPrivateKey or ErrInvalidKey
}

func (e *KeyError) Error() string { return fmt.Sprintf("JWK member %q: %s", e.Member, e.Reason) }

// Unwrap returns ErrPrivateKey or ErrInvalidKey.
func (e *KeyError) Unwrap() error { return e.Err }

func invalid(member, format string, args ...any) *KeyError {
	return &KeyError{Member: member, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidKey}
}

// Key is a validated public signing key of a client.
type Key struct {
	KID string
	Kty string // "RSA", "EC" or "OKP"
	Crv string // for EC and OKP
	Alg string // optional "alg" member; when set, the only algorithm the key is used with
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

type jwkMembers struct {
	Kty    string   `json:"kty"`
	KID    *string  `json:"kid"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
}

// ParseKey validates one JWK as a client's public signing key (SMART
// client-confidential-asymmetric "Registering a client"): kty and kid
// present, bare key members, RSA of at least 2048 bits, EC on P-256, P-384
// or P-521, OKP Ed25519, no private material, "use" (if present) "sig",
// "key_ops" (if present) including "verify", "alg" (if present) on the
// allow-list and fitting the key. The error is a *KeyError.
func ParseKey(raw []byte) (Key, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return Key{}, invalid("", "not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := all[m]; ok {
			return Key{}, &KeyError{Member: m, Err: ErrPrivateKey,
				Reason: "the key holds private key material; register public keys only and keep the private key secret"}
		}
	}
	var m jwkMembers
	if err := json.Unmarshal(raw, &m); err != nil {
		return Key{}, invalid("", "members have the wrong JSON types")
	}
	if err := checkMembers(m); err != nil {
		return Key{}, err
	}
	k := Key{KID: *m.KID, Kty: m.Kty, Crv: m.Crv, Alg: m.Alg}
	pub, err := publicKey(raw, m)
	if err != nil {
		return Key{}, err
	}
	k.Public = pub
	if k.Alg != "" && !k.Fits(k.Alg) {
		return Key{}, invalid("alg", "alg %q does not fit a %s key", k.Alg, k.Kty)
	}
	return k, nil
}

func checkMembers(m jwkMembers) error {
	switch {
	case m.Kty == "":
		return invalid("kty", "kty is required")
	case m.KID == nil || *m.KID == "":
		return invalid("kid", "kid is required")
	case m.Use != "" && m.Use != "sig":
		return invalid("use", "use must be \"sig\" for a signing key, not %q", m.Use)
	case m.KeyOps != nil && !slices.Contains(m.KeyOps, "verify"):
		return invalid("key_ops", "key_ops must include \"verify\"")
	case m.Alg != "" && !AlgAllowed(m.Alg):
		return invalid("alg", "alg %q is not accepted; use one of %v", m.Alg, Algorithms)
	case m.Kty == "EC" && !slices.Contains([]string{"P-256", "P-384", "P-521"}, m.Crv):
		return invalid("crv", "EC curve %q is not supported; use P-256, P-384 or P-521", m.Crv)
	case m.Kty == "OKP" && m.Crv != "Ed25519":
		return invalid("crv", "OKP curve %q is not supported; use Ed25519", m.Crv)
	}
	return nil
}

// publicKey parses the key material with jwx and checks its strength.
func publicKey(raw []byte, m jwkMembers) (crypto.PublicKey, error) {
	switch m.Kty {
	case "RSA", "EC", "OKP":
	default:
		return nil, invalid("kty", "kty %q is not supported; use RSA, EC or OKP", m.Kty)
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, invalid(requiredMember(m.Kty), "the %s key does not parse: %v", m.Kty, err)
	}
	var pub any
	if err := jwk.Export(key, &pub); err != nil {
		return nil, invalid(requiredMember(m.Kty), "the %s key cannot be used: %v", m.Kty, err)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if bits := p.N.BitLen(); bits < MinRSABits {
			return nil, invalid("n", "RSA key has %d bits; at least %d are required", bits, MinRSABits)
		}
		return p, nil
	case *ecdsa.PublicKey:
		return checkEC(p, m.Crv)
	case ed25519.PublicKey:
		if m.Crv != "Ed25519" {
			return nil, invalid("crv", "OKP curve %q is not supported; use Ed25519", m.Crv)
		}
		return p, nil
	}
	return nil, invalid("kty", "kty %q with crv %q is not a supported public key", m.Kty, m.Crv)
}

func checkEC(p *ecdsa.PublicKey, crv string) (crypto.PublicKey, error) {
	want := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[crv]
	if want == nil || p.Curve != want {
		return nil, invalid("crv", "EC curve %q is not supported; use P-256, P-384 or P-521", crv)
	}
	return p, nil
}

func requiredMember(kty string) string {
	switch kty {
	case "RSA":
		return "n"
	default:
		return "x"
	}
}

// Fits reports whether the key may verify a JWS with alg: kty and curve
// must match the algorithm family (RFC 7518 §3.1; ES256 needs P-256, etc.)
// and a key with an "alg" member is used with that algorithm only.
func (k Key) Fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.Kty == "RSA"
	case "ES256":
		return k.Kty == "EC" && k.Crv == "P-256"
	case "ES384":
		return k.Kty == "EC" && k.Crv == "P-384"
	case "ES512":
		return k.Kty == "EC" && k.Crv == "P-521"
	case "EdDSA":
		return k.Kty == "OKP" && k.Crv == "Ed25519"
	}
	return false
}
