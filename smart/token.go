package smart

// Grant types, client assertion type and token type of the SMART Backend
// Services token request (backend-services.html#request-access-token).
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	TokenTypeBearer        = "Bearer"
)

// Token endpoint authentication methods (RFC 7591 §2, SMART conformance).
const (
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// TokenResponse is the successful token response of RFC 6749 §5.1 as SMART
// Backend Services requires it: access_token, token_type, expires_in and scope.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// AssertionMaxLifetime is the longest an authentication JWT may live: its exp
// "SHALL be no more than five minutes in the future" (client-confidential-asymmetric.html).
const AssertionMaxLifetimeSeconds = 300
