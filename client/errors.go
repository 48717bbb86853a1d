package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/client/internal/backoff"
	"github.com/fhirgate/fhirgate/fhir"
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// HTTPError is an unsuccessful HTTP answer from a FHIR, discovery or file
// server. Errors from the token endpoint that carry an OAuth error body are
// *smart.Error instead.
type HTTPError struct {
	// Method is the request method.
	Method string
	// URL is the request URL without its query: signed file URLs carry
	// credentials there, and errors end up in logs.
	URL string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RetryAfter is the server's Retry-After, or zero.
	RetryAfter time.Duration
	// Outcome is the OperationOutcome the server sent, if any.
	Outcome *fhir.OperationOutcome
	// Body is the start of a body that was not an OperationOutcome.
	Body string
}

// Error renders the method, URL, status and the server's explanation on one line.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if d := e.Detail(); d != "" {
		msg += ": " + d
	}
	return msg
}

// Detail is the server's explanation: the OperationOutcome diagnostics, or
// the start of the body.
func (e *HTTPError) Detail() string {
	if e.Outcome != nil {
		var parts []string
		for _, is := range e.Outcome.Issue {
			if is.Diagnostics != "" {
				parts = append(parts, is.Diagnostics)
			} else if is.Code != "" {
				parts = append(parts, string(is.Code))
			}
		}
		return strings.Join(parts, "; ")
	}
	return strings.Join(strings.Fields(e.Body), " ")
}

// Temporary reports whether asking again later may succeed: 408, 429, 502,
// 503, 504, a 500 without an OperationOutcome, or an OperationOutcome whose issue code is transient,
// throttled or timeout (Bulk Data 2.0 export.html#response---error-status-1
// asks servers to use a transient code for failures worth retrying).
func (e *HTTPError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	if e.Outcome != nil {
		for _, is := range e.Outcome.Issue {
			switch is.Code {
			case fhir.IssueTransient, fhir.IssueThrottled, fhir.IssueTimeout:
				return true
			}
		}
	}
	// A bare 500 is most likely a crash or a proxy; a 500 with an
	// OperationOutcome that is not transient is a failure the server means.
	return e.StatusCode == http.StatusInternalServerError && e.Outcome == nil
}

// ResponseError reads an unsuccessful response into an *HTTPError. It
// reads at most 64 KiB of the body and does not close it.
func ResponseError(resp *http.Response) error {
	e := &HTTPError{StatusCode: resp.StatusCode}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		e.URL = RedactURL(resp.Request.URL)
	}
	e.RetryAfter, _ = backoff.RetryAfter(resp.Header, time.Now())
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var oo fhir.OperationOutcome
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" {
		e.Outcome = &oo
		return e
	}
	body = bytes.ToValidUTF8(body, []byte("?"))
	if len(body) > 300 {
		body = append(body[:300], "..."...)
	}
	e.Body = string(body)
	return e
}

// RedactURL renders u without user info, query or fragment, for messages
// and logs.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := c.String()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}
