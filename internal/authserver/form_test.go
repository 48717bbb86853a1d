package authserver

import (
	"net/url"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/smart"
)

func TestParseTokenForm(t *testing.T) {
	form := url.Values{
		"grant_type": {"client_credentials"}, "scope": {"system/*.read"},
		"client_assertion_type": {smart.AssertionTypeJWTBearer}, "client_assertion": {"a.b.c"},
		"client_id": {""}, "unknown": {"ignored"},
	}
	r, err := ParseTokenForm(form, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if r.GrantType != "client_credentials" || r.Scope != "system/*.read" || r.ClientAssertion != "a.b.c" || r.ClientID != "" || r.HasBasic {
		t.Fatalf("request = %+v", r)
	}
	r, err = ParseTokenForm(url.Values{"grant_type": {"client_credentials"}}, "my%20client", "p%2Bw+d", true)
	if err != nil || r.BasicUser != "my client" || r.BasicPassword != "p+w d" {
		t.Fatalf("Basic decoding: %+v %v", r, err)
	}
	r, _ = ParseTokenForm(url.Values{}, "c", "100%", true)
	if r.BasicPassword != "100%" {
		t.Fatalf("undecodable Basic password = %q", r.BasicPassword)
	}
}

func TestParseTokenFormRefusals(t *testing.T) {
	tests := []struct {
		name      string
		form      url.Values
		user      string
		hasBasic  bool
		wantInDes string
	}{
		{"repeated grant_type", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, "", false, `"grant_type" is repeated`},
		{"repeated scope", url.Values{"scope": {"a", "b"}}, "", false, `"scope" is repeated`},
		{"repeated unknown parameter", url.Values{"x": {"1", "2"}}, "", false, `"x" is repeated`},
		{"Basic and assertion", url.Values{"client_assertion": {"a.b.c"}}, "c", true, "exactly one"},
		{"Basic and client_secret", url.Values{"client_secret": {"s"}}, "c", true, "exactly one"},
		{"assertion and client_secret", url.Values{"client_assertion_type": {"x"}, "client_secret": {"s"}}, "", false, "exactly one"},
		{"client_id differs from Basic user", url.Values{"client_id": {"other"}}, "c", true, "differs from the HTTP Basic user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTokenForm(tt.form, tt.user, "p", tt.hasBasic)
			oe := oauthError(t, err, smart.ErrInvalidRequest, 400)
			if !strings.Contains(oe.Description, tt.wantInDes) {
				t.Fatalf("description %q, want %q", oe.Description, tt.wantInDes)
			}
		})
	}
}
