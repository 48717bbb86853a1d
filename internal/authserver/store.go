package authserver

import (
	"context"
	"time"
)

// ClientStore is what the authorization server needs from storage to find
// clients. The SQL store implements it.
type ClientStore interface {
	// LookupClient returns the stored Client JSON (as written by
	// Client.StorageForm) and the argon2id PHC hash of its secret ("" when
	// it has none). ok is false, with a nil error, when no client has id;
	// err is for storage failures only.
	LookupClient(ctx context.Context, id string) (doc []byte, secretHash string, ok bool, err error)
}

// RegisteredClientStore is a ClientStore that also tells which
// registration of an id it holds. When the ClientStore implements it, each
// access token carries its client's registration, and a token of a client
// that was deleted and then registered again under the same id is refused
// (invalid_token) instead of coming back to life; with a plain ClientStore
// such a token stays valid until it expires.
type RegisteredClientStore interface {
	ClientStore
	// LookupRegisteredClient is LookupClient plus registration: an opaque
	// value that stays the same while the client is replaced (PUT over an
	// existing id) and differs once it is deleted and registered again,
	// such as the creation time of its row in microseconds, or a random
	// value set when the row is inserted and never updated.
	LookupRegisteredClient(ctx context.Context, id string) (doc []byte, secretHash, registration string, ok bool, err error)
}

// ReplayStore remembers the jti of every accepted client assertion, per
// client, until the assertion can no longer be used anyway (SMART-ASYM
// requires rejecting a replayed jti; RFC 7523 §3 item 7).
type ReplayStore interface {
	// UseJTI records (clientID, jti) until the instant until and reports
	// whether it was fresh. It must be atomic: of any number of concurrent
	// calls with the same (clientID, jti), exactly one reports fresh=true.
	// A record whose until has passed may be purged and then counts as
	// unseen. err is for storage failures only.
	UseJTI(ctx context.Context, clientID, jti string, until time.Time) (fresh bool, err error)
}
