// Package client is a Go SDK for SMART Backend Services: a backend service
// authenticates to a FHIR server's authorization server with a signed JWT
// (private_key_jwt, RFC 7523) and uses the short-lived access token it gets
// back (SMART App Launch 2.2, backend-services.html and
// client-confidential-asymmetric.html). Its sub-package bulk runs FHIR Bulk
// Data exports with those tokens.
//
// The SDK works against any conforming server, not only fhirgate, and
// depends on nothing but the standard library, golang.org/x/oauth2,
// golang.org/x/sync and fhirgate's fhir and smart vocabulary packages; it
// signs JWTs itself (RS384, RS256, ES384, ES256).
//
// # Keys
//
// A client registers the public half of a key pair with the server and
// keeps the private half. GenerateKey makes one; Key.MarshalPEM writes the
// private key as PKCS#8 PEM and PublicJWKS the JWK Set to register;
// LoadKeyFile and LoadKey read PEM or JWK private keys back. A key's kid
// defaults to its RFC 7638 thumbprint.
//
// # Tokens
//
// NewTokenSource returns a TokenSource, an oauth2.TokenSource that finds
// the token endpoint through [base]/.well-known/smart-configuration (see
// Discover), signs a fresh Assertion for each token request, caches the
// token and replaces it shortly before it expires. However many goroutines
// ask at once, one token request is in flight. Transient failures are
// retried with backoff; OAuth errors come back as *smart.Error, other HTTP
// failures as *HTTPError.
//
// # Calling the FHIR API
//
// TokenSource.Client returns an http.Client whose Transport adds the
// bearer token to every request and, when the server answers 401, drops
// the token, gets a new one and sends the request once more.
//
// # Testing
//
// The sub-package smarttest runs a strict in-memory SMART Backend Services
// and Bulk Data server for tests.
package client
