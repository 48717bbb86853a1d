package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/client/internal/backoff"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/smart"
)

// maxTokenBody bounds a token response; real ones are a few kilobytes.
const maxTokenBody = 1 << 20

// TokenResponse is a successful token response (RFC 6749 §5.1; SMART
// backend-services.html#response) and the raw JSON it came from, which may
// hold members SMART does not name.
type TokenResponse struct {
	smart.TokenResponse
	// Raw is the response body exactly as received.
	Raw json.RawMessage
}

// RequestToken sends one SMART Backend Services token request
// (backend-services.html#request-access-token): a form POST with
// grant_type=client_credentials, the jwt-bearer client_assertion_type, the
// signed assertion and the space-separated scope. It does not retry. An OAuth
// error response is returned as a *smart.Error with its Status and
// RetryAfter set; other failures as an *HTTPError or a transport error.
func RequestToken(ctx context.Context, hc *http.Client, tokenURL, assertion, scope string) (*TokenResponse, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	form := url.Values{
		"grant_type":            {smart.GrantClientCredentials},
		"client_assertion_type": {smart.AssertionTypeJWTBearer},
		"client_assertion":      {assertion},
		"scope":                 {scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("client: token request: %w", err)
	}
	req.Header.Set("Content-Type", fhir.MediaFormURL)
	req.Header.Set("Accept", fhir.MediaPlainJSON)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return nil, fmt.Errorf("client: token request: reading the response: %w", err)
	}
	// Inferno accepts 200 or 201 for success (A9.8); so do we.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("client: token request: %w", tokenError(resp, body))
	}
	tr, err := parseTokenResponse(body)
	if err != nil {
		return nil, fmt.Errorf("client: token request: %s: %w", RedactURL(req.URL), err)
	}
	return tr, nil
}

// tokenError turns an error response into a *smart.Error when it has the
// RFC 6749 §5.2 shape, else into an *HTTPError.
func tokenError(resp *http.Response, body []byte) error {
	var oe smart.Error
	if json.Unmarshal(body, &oe) == nil && oe.Code != "" {
		oe.Status = resp.StatusCode
		if d, ok := backoff.RetryAfter(resp.Header, time.Now()); ok {
			oe.RetryAfter = int((d + time.Second - 1) / time.Second)
		}
		return &oe
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return ResponseError(resp)
}

// parseTokenResponse decodes and checks a success body. expires_in is
// accepted as a number or a numeric string, since both occur in the wild.
func parseTokenResponse(body []byte) (*TokenResponse, error) {
	var raw struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Scope       string          `json:"scope"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("the token response is not JSON: %w", err)
	}
	if raw.AccessToken == "" {
		return nil, fmt.Errorf("the token response has no access_token")
	}
	if raw.TokenType != "" && !strings.EqualFold(raw.TokenType, "bearer") {
		return nil, fmt.Errorf("token_type %q is not bearer", raw.TokenType)
	}
	var exp int64
	if s := strings.Trim(string(raw.ExpiresIn), `"`); s != "" && s != "null" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return nil, fmt.Errorf("expires_in %s is not a number of seconds", raw.ExpiresIn)
		}
		exp = int64(f)
	}
	return &TokenResponse{
		TokenResponse: smart.TokenResponse{AccessToken: raw.AccessToken, TokenType: smart.TokenTypeBearer,
			ExpiresIn: exp, Scope: raw.Scope},
		Raw: json.RawMessage(body),
	}, nil
}
