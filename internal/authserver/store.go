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
