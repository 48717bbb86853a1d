// Package tokens issues and verifies fhirgate's access tokens: JWTs
// (typ "at+jwt", RFC 9068 §2.1) signed with fhirgate's own keys, carrying
// iss (the base URL), sub and client_id, scope, iat, exp and jti, and
// client_reg (the client's registration) when the client store knows it.
//
// Signing keys live in a KeyStore (the database), are generated on first
// start, rotate on a schedule (Keyring.Maintain) or on command
// (Keyring.Rotate) with overlap: a key that stops signing keeps verifying
// for VerifyGrace, longer than any token it signed lives. Their public
// halves are served as a JWK Set (Keyring.PublicJWKS). A new key's kid
// follows from the newest stored key's, so that replicas adding a key at
// the same moment (first start on an empty database, a scheduled rotation)
// name it alike, the first insert wins, and all sign with that one key.
//
// Every request's token is verified (Service.Verify): signature with the
// algorithm pinned to the key named by kid, typ, iss, exp, and a "client
// still active, and still the registration the token names" lookup so that
// deactivating or deleting a client stops its tokens at once and for good. A bounded cache keyed by the token's SHA-256 skips the
// signature check for tokens seen before, until their exp.
package tokens
