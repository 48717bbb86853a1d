package authserver

import (
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/smart"
)

// Capabilities fhirgate advertises (SMART 2.2 conformance.html
// "Capabilities"); listing one means fhirgate SHALL support it.
var Capabilities = []string{
	"client-confidential-asymmetric",
	"client-confidential-symmetric",
	"permission-v1",
	"permission-v2",
}

// ScopesSupported are examples of the system scopes fhirgate grants; SMART
// says the server SHALL support every scope it lists.
var ScopesSupported = []string{"system/*.rs", "system/*.cruds", "system/*.read", "system/*.write", "system/*.*"}

// Discovery builds the document served at [base]/.well-known/smart-configuration
// and [base]/fhir/.well-known/smart-configuration for a backend-services
// server (SMART 2.2 conformance.html and client-confidential-asymmetric.html
// "Advertising"): every endpoint is an absolute URL under baseURL.
// authorization_endpoint is left out, as SMART 2.2 requires it only for
// launch capabilities, and code_challenge_methods_supported is ["S256"],
// which 2.2 lists as required without condition.
func Discovery(baseURL string) smart.Configuration {
	base := strings.TrimRight(baseURL, "/")
	return smart.Configuration{
		TokenEndpoint:         base + "/auth/token",
		IntrospectionEndpoint: base + "/auth/introspect",
		JWKSURI:               base + "/.well-known/jwks.json",
		GrantTypesSupported:   []string{smart.GrantClientCredentials},
		TokenEndpointAuthMethodsSupported: []string{
			smart.AuthPrivateKeyJWT, smart.AuthClientSecretBasic, smart.AuthClientSecretPost,
		},
		TokenEndpointAuthSigningAlgValuesSupported: slices.Clone(jwks.Algorithms),
		ScopesSupported:               slices.Clone(ScopesSupported),
		Capabilities:                  slices.Clone(Capabilities),
		CodeChallengeMethodsSupported: []string{"S256"},
	}
}
