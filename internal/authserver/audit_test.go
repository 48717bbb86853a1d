package authserver

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
)

// TestNoSecretsInLogs drives every path that logs (token issued and
// refused for each authentication method, replay, Basic success and
// failure, bearer and introspection of good and bad tokens) and checks that
// no assertion, token, secret or key material appears in the log, while
// the audit lines carry the fields an auditor needs.
func TestNoSecretsInLogs(t *testing.T) {
	w := newTokenWorld(t)
	ctx := context.Background()
	const secret = "s3cret-value"
	var forbidden []string
	forbid := func(jwt string) {
		forbidden = append(forbidden, jwt)
		forbidden = append(forbidden, strings.Split(jwt, ".")...)
	}

	good := w.assertion(w.k1, "uri-client", nil, nil)
	forbid(good)
	resp, err := w.srv.Token(ctx, tokenRequest(good, "system/*.read"))
	if err != nil {
		t.Fatal(err)
	}
	forbid(resp.AccessToken)
	if _, err := w.srv.Token(ctx, tokenRequest(good, "system/*.read")); err == nil {
		t.Fatal("replay accepted")
	}
	forged := w.assertion(w.forger, "uri-client", nil, nil)
	forbid(forged)
	w.srv.Token(ctx, tokenRequest(forged, "system/*.read"))
	badScope := w.assertion(w.k1, "uri-client", nil, nil)
	forbid(badScope)
	w.srv.Token(ctx, tokenRequest(badScope, "system/*.write"))

	w.srv.Token(ctx, TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", HasBasic: true, BasicUser: "secret-only", BasicPassword: secret})
	w.srv.Token(ctx, TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", HasBasic: true, BasicUser: "secret-only", BasicPassword: secret + "-wrong"})
	w.srv.Token(ctx, TokenRequest{GrantType: "client_credentials", Scope: "system/*.read", ClientID: "secret-only", ClientSecret: secret + "-post"})
	w.srv.AuthenticateBasic(ctx, "basic-only", "basic-secret")
	w.srv.AuthenticateBasic(ctx, "basic-only", "basic-secret-wrong")
	w.srv.AuthenticateBearer(ctx, resp.AccessToken)
	w.srv.AuthenticateBearer(ctx, resp.AccessToken+"x")
	w.srv.Introspect(ctx, resp.AccessToken)
	w.srv.Introspect(ctx, "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	forbidden = append(forbidden, "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", secret, "basic-secret",
		"PRIVATE KEY", "argon2id")

	logs := w.logs.String()
	for _, f := range forbidden {
		if len(f) >= 6 && strings.Contains(logs, f) {
			t.Errorf("log contains %q", f)
		}
	}

	var issued, refused int
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if line["audit"] != "token" {
			continue
		}
		for _, k := range []string{"client_id", "decision", "auth_method", "assertion_jti"} {
			if _, ok := line[k]; !ok {
				t.Errorf("audit line lacks %s: %s", k, sc.Text())
			}
		}
		switch line["decision"] {
		case "issued":
			issued++
			if line["jti"] == "" || line["scope"] == "" {
				t.Errorf("issued line lacks jti or scope: %s", sc.Text())
			}
		case "refused":
			refused++
			if line["error"] == "" || line["reason"] == "" {
				t.Errorf("refused line lacks error or reason: %s", sc.Text())
			}
		}
	}
	if issued != 2 || refused != 5 {
		t.Fatalf("audit lines: %d issued, %d refused; want 2 and 5\n%s", issued, refused, logs)
	}
}

// TestAuditLineForRefusal pins the content of one refusal line.
func TestAuditLineForRefusal(t *testing.T) {
	f := newFixture(t)
	kp := jwkstest.New(t, "ES256", "k")
	f.register("c1", backendClient(inlineJWKS(t, kp)))
	claims := f.claims("c1")
	claims["aud"] = "https://wrong.example/token"
	f.srv.Token(context.Background(), TokenRequest{GrantType: "client_credentials", Scope: "system/*.read",
		ClientAssertionType: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
		ClientAssertion:     kp.Sign(t, nil, claims), RemoteAddr: "198.51.100.4"})
	var line map[string]any
	json.Unmarshal([]byte(strings.TrimSpace(lastLine(f.logs.String()))), &line)
	want := map[string]any{"msg": "token refused", "audit": "token", "client_id": "c1", "decision": "refused",
		"error": "invalid_client", "auth_method": "private_key_jwt", "assertion_jti": claims["jti"], "remote_addr": "198.51.100.4"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if !strings.Contains(line["reason"].(string), "aud must be") {
		t.Errorf("reason = %v", line["reason"])
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
