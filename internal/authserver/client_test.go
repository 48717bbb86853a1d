package authserver

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/smart"
)

// seedClient is the registration body of aidbox-smart-backend-services.md.
const seedClient = `{
  "type": "bulk-api-client",
  "active": true,
  "auth": {
    "client_credentials": {
      "client_assertion_types": [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
      ],
      "access_token_expiration": 300,
      "token_format": "jwt"
    }
  },
  "scope": [
    "system/*.read"
  ],
  "jwks_uri": "https://inferno.example.org/.well-known/jwks.json",
  "grant_types": [
    "client_credentials"
  ]
}`

func TestParseSeedClients(t *testing.T) {
	c, err := ParseClientFor("inferno-my-clinic-bulk-client", []byte(seedClient))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "inferno-my-clinic-bulk-client" || c.Type != "bulk-api-client" || !c.Active ||
		!c.HasGrant(GrantClientCredentials) || c.HasGrant(GrantBasic) || c.AccessTokenLifetime != 300*time.Second ||
		c.Scope.String() != "system/*.read" || c.JWKSURI != "https://inferno.example.org/.well-known/jwks.json" ||
		!c.AcceptsAssertionType(smart.AssertionTypeJWTBearer) {
		t.Fatalf("client = %+v", c)
	}
	b, err := ParseClient([]byte(`{"id": "client-confidential-symmetric", "secret": "secret", "grant_types": ["basic"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "client-confidential-symmetric" || !b.Active || b.HasKeys() || b.BasicScopes().String() != "system/*.cruds" {
		t.Fatalf("basic client = %+v", b)
	}
}

func TestStorageFormDropsSecret(t *testing.T) {
	c, err := ParseClientFor("c1", []byte(`{"grant_types":["basic","client_credentials"],"secret":"hunter2-very-secret","scope":["system/Patient.rs"],"name":"Demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	doc, hash, err := c.StorageForm()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "hunter2") || strings.Contains(string(doc), "secret") || strings.Contains(string(doc), "argon2") {
		t.Fatalf("stored JSON leaks the secret: %s", doc)
	}
	var m map[string]any
	json.Unmarshal(doc, &m)
	if m["resourceType"] != "Client" || m["id"] != "c1" || m["name"] != "Demo" {
		t.Fatalf("stored JSON = %s", doc)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash = %q", hash)
	}
	if !VerifySecret(hash, "hunter2-very-secret") || VerifySecret(hash, "hunter2-very-secreT") {
		t.Fatal("VerifySecret")
	}
	again, err := LoadClient(doc, hash)
	if err != nil || again.SecretHash != hash || again.ID != "c1" || again.Scope.String() != "system/Patient.rs" {
		t.Fatalf("LoadClient = %+v, %v", again, err)
	}
	out, _ := again.JSON()
	if strings.Contains(string(out), "argon2") || strings.Contains(string(out), "secret") {
		t.Fatalf("JSON() leaks: %s", out)
	}
	if _, err := LoadClient([]byte(`{"grant_types":["basic"],"secret":"x"}`), ""); err == nil {
		t.Fatal("LoadClient accepted a stored secret")
	}
	if _, err := LoadClient([]byte(`{"grant_types":["basic"]}`), ""); err == nil {
		t.Fatal("LoadClient accepted a basic client without a hash")
	}
}

func TestVerifySecretMalformedHashes(t *testing.T) {
	good, _ := HashSecret("s")
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=18$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999,t=2,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=19456,t=100,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=19456,t=2,p=1$!!$" + parts[5],
		"$argon2id$v=19$m=19456,t=2,p=1$" + parts[4] + "$" + parts[5][:4],
		"$argon2id$v=19$m=19456,t=1,p=1$" + parts[4] + "$" + parts[5],
	} {
		if VerifySecret(h, "s") {
			t.Errorf("VerifySecret(%q) matched", h)
		}
	}
}

func TestParseClientRefusals(t *testing.T) {
	kp := jwkstest.New(t, "RS384", "k1")
	pub := kp.PublicJWK(t, false)
	noKid := map[string]any{}
	for k, v := range pub {
		if k != "kid" {
			noKid[k] = v
		}
	}
	small := jwkstest.RSAKey(t, 1024, 0)
	smallJWK := map[string]any{"kty": "RSA", "kid": "s", "n": base64.RawURLEncoding.EncodeToString(small.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(small.E)).Bytes())}
	set := func(keys ...any) map[string]any { return map[string]any{"keys": keys} }
	base := func(kv ...any) string {
		m := map[string]any{"grant_types": []string{"client_credentials"}, "jwks_uri": "https://c.example/jwks.json", "scope": []string{"system/*.read"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	cc := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"client_credentials": m}
	}
	tests := []struct {
		name   string
		body   string
		status int
		expr   string
		msg    string
	}{
		{"not JSON", `{`, 400, "", "one JSON object"},
		{"array", `[]`, 400, "", "one JSON object"},
		{"two objects", `{}{}`, 400, "", "one JSON object"},
		{"null", `null`, 400, "", "one JSON object"},
		{"resourceType", base("resourceType", "Patient"), 422, "resourceType", `"Client"`},
		{"id", base("id", "a b"), 422, "id", "not a valid FHIR id"},
		{"type", base("type", 5), 422, "type", "a string"},
		{"active", base("active", "yes"), 422, "active", "true or false"},
		{"grant_types missing", base("grant_types", nil), 422, "grant_types", "must hold"},
		{"grant_types not an array", base("grant_types", "basic"), 422, "grant_types", "array of strings"},
		{"grant type unsupported", base("grant_types", []string{"client_credentials", "password"}), 422, "grant_types[1]", `"password" is not supported`},
		{"auth not an object", base("auth", 1), 422, "auth", "an object"},
		{"client_credentials not an object", base("auth", map[string]any{"client_credentials": []int{1}}), 422, "auth.client_credentials", "must be an object"},
		{"assertion type", base("auth", cc("client_assertion_types", []string{"urn:x"})), 422, "auth.client_credentials.client_assertion_types[0]", `"urn:x" is not supported`},
		{"expiration zero", base("auth", cc("access_token_expiration", 0)), 422, "auth.client_credentials.access_token_expiration", "whole number"},
		{"expiration string", base("auth", cc("access_token_expiration", "300")), 422, "auth.client_credentials.access_token_expiration", "whole number"},
		{"expiration fraction", base("auth", cc("access_token_expiration", 1.5)), 422, "auth.client_credentials.access_token_expiration", "whole number"},
		{"expiration too long", base("auth", cc("access_token_expiration", 100000)), 422, "auth.client_credentials.access_token_expiration", "86400"},
		{"token_format", base("auth", cc("token_format", "opaque")), 422, "auth.client_credentials.token_format", `"opaque" is not supported`},
		{"scope not an array", base("scope", "system/*.read"), 422, "scope", "array of strings"},
		{"scope unknown type", base("scope", []string{"system/*.read", "system/Foo.read"}), 422, "scope[1]", "not a FHIR R4 resource type"},
		{"scope user", base("scope", []string{"user/*.read"}), 422, "scope[0]", "only system/"},
		{"scope launch", base("scope", []string{"launch"}), 422, "scope[0]", "launch"},
		{"scope permission", base("scope", []string{"system/*.dus"}), 422, "scope[0]", "permissions must be"},
		{"jwks_uri relative", base("jwks_uri", "/jwks.json"), 422, "jwks_uri", "absolute"},
		{"jwks_uri scheme", base("jwks_uri", "ftp://c.example/jwks"), 422, "jwks_uri", "https"},
		{"jwks_uri credentials", base("jwks_uri", "https://u:p@c.example/jwks"), 422, "jwks_uri", "credentials"},
		{"jwks_uri fragment", base("jwks_uri", "https://c.example/jwks#a"), 422, "jwks_uri", "fragment"},
		{"jwks_uri and jwks", base("jwks", set(pub)), 422, "jwks", "not both"},
		{"jwks without keys", base("jwks_uri", nil, "jwks", map[string]any{}), 422, "jwks", "JWK Set"},
		{"jwks empty", base("jwks_uri", nil, "jwks", map[string]any{"keys": []any{}}), 422, "jwks", "empty"},
		{"jwks key without kid", base("jwks_uri", nil, "jwks", set(noKid)), 422, "jwks.keys[0].kid", "kid is required"},
		{"jwks private key", base("jwks_uri", nil, "jwks", set(pub, kp.PrivateJWK(t))), 422, "jwks.keys[1].d", "private key material"},
		{"jwks small RSA", base("jwks_uri", nil, "jwks", set(smallJWK)), 422, "jwks.keys[0].n", "at least 2048"},
		{"jwks HS256 key", base("jwks_uri", nil, "jwks", set(map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"})), 422, "jwks.keys[0].k", "private key material"},
		{"secret empty", base("secret", ""), 422, "secret", "1 to 512"},
		{"secret too long", base("secret", strings.Repeat("s", 513)), 422, "secret", "1 to 512"},
		{"secret not a string", base("secret", 5), 422, "secret", "a string"},
		{"basic without secret", base("grant_types", []string{"basic"}), 422, "secret", "needs a secret"},
		{"client_credentials without keys or secret", base("jwks_uri", nil), 422, "jwks_uri", "needs jwks_uri, jwks or a secret"},
		{"assertion types without keys", base("jwks_uri", nil, "secret", "x", "auth", cc("client_assertion_types", []string{smart.AssertionTypeJWTBearer})), 422, "jwks_uri", "needs jwks_uri or jwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseClient([]byte(tt.body))
			fe := fhir.AsError(err)
			if fe == nil {
				t.Fatalf("error %v is not a *fhir.Error", err)
			}
			if fe.Status != tt.status || !strings.Contains(fe.Diagnostics, tt.msg) {
				t.Fatalf("error = %d %q, want %d mentioning %q", fe.Status, fe.Diagnostics, tt.status, tt.msg)
			}
			if tt.expr != "" && !slices.Equal(fe.Expression, []string{tt.expr}) {
				t.Fatalf("expression = %v, want %q", fe.Expression, tt.expr)
			}
			if tt.status == 422 && fe.Outcome().Issue[0].Expression[0] != tt.expr {
				t.Fatal("OperationOutcome does not name the field")
			}
		})
	}
}

func TestParseClientFor(t *testing.T) {
	if _, err := ParseClientFor("a", []byte(`{"id":"b","grant_types":["basic"],"secret":"x"}`)); fhir.AsError(err) == nil ||
		fhir.AsError(err).Status != http.StatusUnprocessableEntity || fhir.AsError(err).Expression[0] != "id" {
		t.Fatalf("id mismatch: %v", err)
	}
	if _, err := ParseClientFor("a b", []byte(`{"grant_types":["basic"],"secret":"x"}`)); fhir.AsError(err) == nil ||
		fhir.AsError(err).Status != http.StatusBadRequest {
		t.Fatalf("bad URL id: %v", err)
	}
	c, err := ParseClientFor("a", []byte(`{"grant_types":["basic"],"secret":"x"}`))
	if err != nil || c.ID != "a" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestImpliedAssertionType(t *testing.T) {
	kp := jwkstest.New(t, "ES384", "k")
	body, _ := json.Marshal(map[string]any{"grant_types": []string{"client_credentials"}, "jwks": json.RawMessage(jwkstest.JWKS(t, kp))})
	c, err := ParseClient(body)
	if err != nil {
		t.Fatal(err)
	}
	if !c.AcceptsAssertionType(smart.AssertionTypeJWTBearer) || c.JWKS == nil || len(c.JWKS.Keys) != 1 {
		t.Fatalf("client = %+v", c)
	}
}
