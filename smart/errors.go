package smart

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes of RFC 6749 §5.2 used at the token endpoint, and of RFC 6750
// §3.1 used by resource servers.
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidClient        = "invalid_client"
	ErrInvalidGrant         = "invalid_grant"
	ErrUnauthorizedClient   = "unauthorized_client"
	ErrUnsupportedGrantType = "unsupported_grant_type"
	ErrInvalidScope         = "invalid_scope"
	ErrInvalidToken         = "invalid_token"
	ErrInsufficientScope    = "insufficient_scope"
	// ErrSlowDown and ErrTemporarilyUnavailable are not token-endpoint codes
	// of RFC 6749; fhirgate uses them for 429 and 503 answers so that a
	// client can still read a JSON error.
	ErrSlowDown               = "slow_down"
	ErrTemporarilyUnavailable = "temporarily_unavailable"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2): the JSON body
// {"error", "error_description"} with its HTTP status. Description is shown
// to the client, so it must never hold a secret, token or assertion.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
	// Status is the HTTP status; it is not part of the JSON body.
	Status int `json:"-"`
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// JSON renders the error body.
func (e *Error) JSON() []byte {
	b, _ := json.Marshal(e)
	return b
}

func newError(status int, code, format string, args []any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

// InvalidRequest is 400 invalid_request: a missing, repeated or malformed parameter.
func InvalidRequest(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, ErrInvalidRequest, format, args)
}

// InvalidClient is 401 invalid_client: client authentication failed
// (SMART client-confidential-asymmetric requires invalid_client for every
// authentication failure; RFC 7523 §3.2).
func InvalidClient(format string, args ...any) *Error {
	return newError(http.StatusUnauthorized, ErrInvalidClient, format, args)
}

// UnauthorizedClient is 400 unauthorized_client: the client may not use this grant.
func UnauthorizedClient(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, ErrUnauthorizedClient, format, args)
}

// UnsupportedGrantType is 400 unsupported_grant_type.
func UnsupportedGrantType(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, ErrUnsupportedGrantType, format, args)
}

// InvalidScope is 400 invalid_scope: malformed, unknown, or nothing left after
// cutting the request down to what the client is registered for.
func InvalidScope(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, ErrInvalidScope, format, args)
}

// SlowDown is 429 with a Retry-After of the given seconds.
func SlowDown(retryAfter int, format string, args ...any) *Error {
	e := newError(http.StatusTooManyRequests, ErrSlowDown, format, args)
	e.RetryAfter = retryAfter
	return e
}
