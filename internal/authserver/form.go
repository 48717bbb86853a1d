package authserver

import (
	"net/url"
	"sort"

	"github.com/fhirgate/fhirgate/smart"
)

// TokenRequest is a parsed token request (RFC 6749 §4.4.2 with the client
// authentication of RFC 7523 §2.2 or RFC 6749 §2.3.1).
type TokenRequest struct {
	GrantType           string
	Scope               string
	ClientID            string // form client_id (optional)
	ClientSecret        string // client_secret_post
	ClientAssertionType string
	ClientAssertion     string
	// BasicUser and BasicPassword are the client_secret_basic credentials,
	// already form-decoded; HasBasic says they were sent.
	BasicUser     string
	BasicPassword string
	HasBasic      bool
	// RemoteAddr is the caller's IP address, for rate limiting ("" skips).
	RemoteAddr string
}

// authMethod names how the request authenticates the client.
type authMethod string

const (
	methodNone          authMethod = ""
	methodPrivateKeyJWT authMethod = smart.AuthPrivateKeyJWT
	methodSecretBasic   authMethod = smart.AuthClientSecretBasic
	methodSecretPost    authMethod = smart.AuthClientSecretPost
)

// ParseTokenForm builds a TokenRequest from the decoded form body of POST
// /auth/token and the request's HTTP Basic credentials, if any. It
// refuses repeated parameters (RFC 6749 §3.2: parameters "MUST NOT be
// included more than once") and more than one client authentication
// method (RFC 6749 §2.3), treats empty parameters as omitted (§3.1), and
// form-decodes the Basic credentials as §2.3.1 requires (when they do not
// decode, the raw value is used). The error is invalid_request.
func ParseTokenForm(form url.Values, basicUser, basicPass string, hasBasic bool) (TokenRequest, error) {
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if len(form[name]) > 1 {
			return TokenRequest{}, smart.InvalidRequest("parameter %q is repeated", shorten(name))
		}
	}
	r := TokenRequest{
		GrantType:           form.Get("grant_type"),
		Scope:               form.Get("scope"),
		ClientID:            form.Get("client_id"),
		ClientSecret:        form.Get("client_secret"),
		ClientAssertionType: form.Get("client_assertion_type"),
		ClientAssertion:     form.Get("client_assertion"),
		HasBasic:            hasBasic,
	}
	if hasBasic {
		r.BasicUser, r.BasicPassword = formDecode(basicUser), formDecode(basicPass)
	}
	if _, err := r.method(); err != nil {
		return TokenRequest{}, err
	}
	return r, nil
}

func formDecode(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// method decides the client authentication method, refusing a mix.
func (r *TokenRequest) method() (authMethod, error) {
	assertion := r.ClientAssertion != "" || r.ClientAssertionType != ""
	n := 0
	for _, used := range []bool{assertion, r.HasBasic, r.ClientSecret != ""} {
		if used {
			n++
		}
	}
	switch {
	case n > 1:
		return methodNone, smart.InvalidRequest("use exactly one client authentication method (a client assertion, HTTP Basic, or client_secret)")
	case r.HasBasic && r.ClientID != "" && r.ClientID != r.BasicUser:
		return methodNone, smart.InvalidRequest("client_id differs from the HTTP Basic user")
	case assertion:
		return methodPrivateKeyJWT, nil
	case r.HasBasic:
		return methodSecretBasic, nil
	case r.ClientSecret != "":
		return methodSecretPost, nil
	}
	return methodNone, nil
}

// shorten keeps client-supplied text short in error descriptions and logs.
func shorten(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
