// Package smart is the SMART App Launch 2.2 and OAuth 2.0 vocabulary shared by
// the fhirgate authorization server and its SDK: error codes and the error
// type of RFC 6749 §5.2, the token response of §5.1, the discovery document
// of SMART conformance.html, and the system-scope grammar of
// scopes-and-launch-context.html.
//
// It depends on the standard library only, so the SDK stays light.
package smart
