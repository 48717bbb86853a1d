// Package authserver is fhirgate's SMART Backend Services authorization
// server without HTTP or SQL: client registration rules (ParseClient), the
// token endpoint (Server.Token) with private_key_jwt client assertions
// checked as RFC 7523 §3 and SMART App Launch 2.2
// client-confidential-asymmetric require, client secrets (argon2id) for
// client_secret_basic/post and Aidbox-style HTTP Basic on /fhir
// (AuthenticateBasic), bearer token verification (AuthenticateBearer),
// introspection (RFC 7662), the smart-configuration document (Discovery)
// and token endpoint rate limits (TokenLimiter).
//
// It consumes small interfaces that the storage layer implements:
// ClientStore (stored Client JSON and secret hash by id) and ReplayStore
// (atomic once-only jti records), plus tokens.KeyStore through the
// tokens.Keyring it is given. Every token issued or refused writes one
// structured audit line through the configured slog.Logger; assertions,
// tokens and secrets are never logged.
package authserver
