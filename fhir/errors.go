package fhir

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure that a FHIR endpoint reports to its client as an
// OperationOutcome with an HTTP status. Diagnostics is shown to the client;
// Err is the underlying cause, logged but never sent (it may hold internals).
type Error struct {
	Status      int
	Code        IssueType
	Diagnostics string
	Expression  []string
	Err         error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Diagnostics, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Diagnostics)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Outcome renders e as an OperationOutcome.
func (e *Error) Outcome() *OperationOutcome {
	sev := SeverityError
	if e.Status >= 500 {
		sev = SeverityFatal
	}
	o := NewOutcome(sev, e.Code, e.Diagnostics)
	o.Issue[0].Expression = e.Expression
	return o
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

func newErr(status int, code IssueType, format string, args []any) *Error {
	return &Error{Status: status, Code: code, Diagnostics: fmt.Sprintf(format, args...)}
}

// Errorf returns an *Error with the given status and issue code.
func Errorf(status int, code IssueType, format string, args ...any) *Error {
	return newErr(status, code, format, args)
}

// Invalid is 400 invalid: the request is malformed.
func Invalid(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, IssueInvalid, format, args)
}

// NotFound is 404 not-found.
func NotFound(format string, args ...any) *Error {
	return newErr(http.StatusNotFound, IssueNotFound, format, args)
}

// Gone is 410 deleted: the resource existed and was deleted.
func Gone(format string, args ...any) *Error {
	return newErr(http.StatusGone, IssueDeleted, format, args)
}

// Conflict is 409 conflict.
func Conflict(format string, args ...any) *Error {
	return newErr(http.StatusConflict, IssueConflict, format, args)
}

// PreconditionFailed is 412 conflict: an If-Match or conditional check failed.
func PreconditionFailed(format string, args ...any) *Error {
	return newErr(http.StatusPreconditionFailed, IssueConflict, format, args)
}

// Unprocessable is 422 processable: the content is well-formed but violates a rule.
func Unprocessable(format string, args ...any) *Error {
	return newErr(http.StatusUnprocessableEntity, IssueProcessing, format, args)
}

// Unauthorized is 401 login: no or bad credentials.
func Unauthorized(format string, args ...any) *Error {
	return newErr(http.StatusUnauthorized, IssueLogin, format, args)
}

// Forbidden is 403 forbidden: valid credentials without the permission.
func Forbidden(format string, args ...any) *Error {
	return newErr(http.StatusForbidden, IssueForbidden, format, args)
}

// NotSupported is 400 not-supported, or another status when given.
func NotSupported(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, IssueNotSupported, format, args)
}

// TooManyRequests is 429 throttled.
func TooManyRequests(format string, args ...any) *Error {
	return newErr(http.StatusTooManyRequests, IssueThrottled, format, args)
}

// Internal wraps err as 500 exception with a diagnostics text that hides it.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: IssueException,
		Diagnostics: "internal error; see the server log", Err: err}
}
