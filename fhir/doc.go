// Package fhir is the FHIR R4 vocabulary that the fhirgate server and its SDK
// share: resource types, the id rule, instants, media types, OperationOutcome
// and the error type that maps a failure to an HTTP status and an issue code.
//
// It depends on the standard library only, so the SDK stays light.
package fhir
