package access

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authserver"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/policy"
	"github.com/fhirgate/fhirgate/smart"
)

// bearerCaller is the context of a request made with an access token
// whose jti is jti, as the HTTP layer builds it.
func bearerCaller(t *testing.T, clientID, scope, jti string) context.Context {
	t.Helper()
	scopes, err := smart.ParseScopes(scope)
	if err != nil {
		t.Fatal(err)
	}
	g := &authserver.Principal{ClientID: clientID, Scopes: scopes, TokenID: jti, Method: "bearer"}
	return authz.WithPrincipal(context.Background(), &authz.Principal{
		ClientID: clientID, Method: "bearer", Scope: scope, TokenID: jti, Grant: g})
}

// auditLines decodes the JSON log lines in buf.
func auditLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// TestAuditLinesCarryTokenID checks that every access decision line names
// the client, the decision, the reason and the jti of the token that asked,
// and never the token itself, for each stage that can decide.
func TestAuditLinesCarryTokenID(t *testing.T) {
	p, err := policy.Parse([]byte(`{"id":"read-patients","engine":"matcho","link":[{"resourceType":"Client","id":"c1"}],
		"matcho":{"request-method":"get","params":{"resource/type":"Patient"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	d := New(policy.NewEngine([]*policy.Policy{p}, policy.WithLogger(logger)), logger)

	tests := []struct {
		name, scope, jti string
		req              authz.Request
		decision, reason string
		status           int
	}{
		{"policy allows", "system/*.rs", "jti-allow",
			authz.Request{Interaction: authz.SearchType, Type: "Patient", Query: url.Values{"name": {"x"}}},
			"allow", "AccessPolicy read-patients (matcho) allows", 0},
		{"policy denies", "system/*.rs", "jti-policy-deny",
			authz.Request{Interaction: authz.Read, Type: "Observation", ID: "o1"},
			"deny", "no AccessPolicy allows this request", 403},
		{"scope denies", "system/Patient.rs", "jti-scope-deny",
			authz.Request{Interaction: authz.Read, Type: "Observation", ID: "o1"},
			"deny", "the granted scopes do not allow read on Observation", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Authorize(bearerCaller(t, "c1", tt.scope, tt.jti), tt.req)
			if tt.status == 0 && err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if tt.status != 0 {
				if fe := fhir.AsError(err); fe == nil || fe.Status != tt.status {
					t.Fatalf("Authorize = %v, want status %d", err, tt.status)
				}
			}
			lines := auditLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d audit lines, want 1", len(lines))
			}
			l := lines[0]
			if l["audit"] != "access" || l["client_id"] != "c1" || l["decision"] != tt.decision || l["jti"] != tt.jti ||
				!strings.HasPrefix(l["reason"].(string), tt.reason) {
				t.Fatalf("audit line = %v, want client c1, decision %s, jti %s, reason %q", l, tt.decision, tt.jti, tt.reason)
			}
		})
	}
}
