package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/smart"
)

// WellKnownPath is appended to a FHIR base URL to find its SMART
// configuration (SMART App Launch 2.2 conformance.html#using-well-known).
const WellKnownPath = "/.well-known/smart-configuration"

// Discover fetches the SMART configuration of the FHIR server at
// fhirBaseURL and checks that it names an absolute token endpoint. A nil hc
// means http.DefaultClient.
func Discover(ctx context.Context, hc *http.Client, fhirBaseURL string) (*smart.Configuration, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u, err := wellKnownURL(fhirBaseURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("client: discovery: %w", err)
	}
	// SMART-BS "Retrieve .well-known": GET with Accept: application/json.
	req.Header.Set("Accept", fhir.MediaPlainJSON)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client: discovery: %w", ResponseError(resp))
	}
	var conf smart.Configuration
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&conf); err != nil {
		return nil, fmt.Errorf("client: discovery: %s is not a SMART configuration: %w", u, err)
	}
	if err := checkEndpoint(conf.TokenEndpoint); err != nil {
		return nil, fmt.Errorf("client: discovery: %s: token_endpoint %w", u, err)
	}
	return &conf, nil
}

// wellKnownURL appends the well-known path to a base that may itself have a
// path component (conformance.html: "the path may be appended even when
// the base has a path").
func wellKnownURL(base string) (string, error) {
	if err := checkEndpoint(base); err != nil {
		return "", fmt.Errorf("client: FHIR base URL %w", err)
	}
	return strings.TrimRight(base, "/") + WellKnownPath, nil
}

// checkEndpoint requires an absolute http(s) URL (conformance.html: all
// endpoint URLs SHALL be absolute).
func checkEndpoint(s string) error {
	if s == "" {
		return fmt.Errorf("is missing")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}
