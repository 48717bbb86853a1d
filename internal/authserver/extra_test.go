package authserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/smart"
)

func TestPrincipalAuthorize(t *testing.T) {
	scopes, _ := smart.ParseScopes("system/Patient.read system/Observation.rs?category=laboratory")
	p := &Principal{ClientID: "c", Scopes: scopes}
	if a, err := p.Authorize("Patient", smart.InteractionSearchType); err != nil || !a.Allowed || a.Filters != nil {
		t.Fatalf("Patient search: %+v %v", a, err)
	}
	a, err := p.Authorize("Observation", smart.InteractionRead)
	if err != nil || len(a.Filters) != 1 || a.Filters[0].String() != "category=laboratory" {
		t.Fatalf("Observation read: %+v %v", a, err)
	}
	for _, tt := range []struct {
		typ string
		i   smart.Interaction
		msg string
	}{
		{"Patient", smart.InteractionDelete, "system/Patient.d"},
		{"Encounter", smart.InteractionRead, "system/Encounter.r"},
		{"Patient", smart.Interaction("operation"), "not covered"},
	} {
		_, err := p.Authorize(tt.typ, tt.i)
		fe := fhir.AsError(err)
		if fe == nil || fe.Status != http.StatusForbidden || !strings.Contains(fe.Diagnostics, tt.msg) {
			t.Errorf("%s %s: %v", tt.typ, tt.i, err)
		}
	}
}

// TestBlockedJWKSURIDescription: with the default SSRF guard a loopback
// jwks_uri is refused, and the description does not echo addresses.
func TestBlockedJWKSURIDescription(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.JWKS = jwks.NewCache(jwks.Config{AllowHTTP: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	})
	kp := jwkstest.New(t, "ES256", "k")
	srv := jwkstest.NewServer(t, jwkstest.JWKS(t, kp))
	f.register("local", backendClient(map[string]any{"jwks_uri": strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)}))
	_, err := f.srv.Token(context.Background(), tokenRequest(kp.Sign(t, nil, f.claims("local")), "system/*.read"))
	oe := oauthError(t, err, smart.ErrInvalidClient, http.StatusUnauthorized)
	if !strings.Contains(oe.Description, "non-public address") || strings.Contains(oe.Description, "127.0.0.1") || strings.Contains(oe.Description, "::1") {
		t.Fatalf("description = %q", oe.Description)
	}
	if srv.Hits.Load() != 0 {
		t.Fatal("the loopback JWKS server was contacted")
	}
}

func TestAuditTokenRefusal(t *testing.T) {
	f := newFixture(t)
	_, err := ParseTokenForm(map[string][]string{"scope": {"a", "b"}}, "", "", false)
	f.srv.AuditTokenRefusal(context.Background(), "203.0.113.5", "", err)
	line := lastLine(f.logs.String())
	for _, want := range []string{`"decision":"refused"`, `"error":"invalid_request"`, `"remote_addr":"203.0.113.5"`, `repeated`} {
		if !strings.Contains(line, want) {
			t.Errorf("audit line %s lacks %s", line, want)
		}
	}
	if !errors.As(err, new(*smart.Error)) {
		t.Fatal("form error is not a *smart.Error")
	}
}
