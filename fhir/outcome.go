package fhir

import "encoding/json"

// IssueSeverity is OperationOutcome.issue.severity (R4 valueset-issue-severity).
type IssueSeverity string

// Issue severities.
const (
	SeverityFatal       IssueSeverity = "fatal"
	SeverityError       IssueSeverity = "error"
	SeverityWarning     IssueSeverity = "warning"
	SeverityInformation IssueSeverity = "information"
)

// IssueType is OperationOutcome.issue.code (R4 valueset-issue-type).
type IssueType string

// Issue types used by fhirgate.
const (
	IssueInvalid       IssueType = "invalid"
	IssueStructure     IssueType = "structure"
	IssueRequired      IssueType = "required"
	IssueValue         IssueType = "value"
	IssueSecurity      IssueType = "security"
	IssueLogin         IssueType = "login"
	IssueForbidden     IssueType = "forbidden"
	IssueProcessing    IssueType = "processing"
	IssueNotSupported  IssueType = "not-supported"
	IssueDuplicate     IssueType = "duplicate"
	IssueMultipleMatch IssueType = "multiple-matches"
	IssueNotFound      IssueType = "not-found"
	IssueDeleted       IssueType = "deleted"
	IssueTooLong       IssueType = "too-long"
	IssueConflict      IssueType = "conflict"
	IssueTooCostly     IssueType = "too-costly"
	IssueThrottled     IssueType = "throttled"
	IssueTransient     IssueType = "transient"
	IssueException     IssueType = "exception"
	IssueTimeout       IssueType = "timeout"
	IssueInformational IssueType = "informational"
)

// OperationOutcome is the R4 OperationOutcome resource, reduced to what a
// server reports.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id,omitempty"`
	Issue        []Issue `json:"issue"`
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    IssueSeverity `json:"severity"`
	Code        IssueType     `json:"code"`
	Diagnostics string        `json:"diagnostics,omitempty"`
	Expression  []string      `json:"expression,omitempty"`
}

// NewOutcome returns an OperationOutcome holding one issue.
func NewOutcome(sev IssueSeverity, code IssueType, diagnostics string) *OperationOutcome {
	return &OperationOutcome{
		ResourceType: "OperationOutcome",
		Issue:        []Issue{{Severity: sev, Code: code, Diagnostics: diagnostics}},
	}
}

// JSON renders the outcome. It cannot fail: every field is a string.
func (o *OperationOutcome) JSON() []byte {
	b, _ := json.Marshal(o)
	return b
}
