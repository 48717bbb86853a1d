// Package store is fhirgate's storage seam: value records, the narrow
// interfaces each consumer needs, and the sentinel errors every backend
// returns. Backends live in sqlstore (SQLite and PostgreSQL, one SQL
// implementation with two dialects); the conformance suite in storetest runs
// on both.
//
// The store holds no authorization logic: who may do what is decided above
// it, so every backend behaves the same for every caller.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/fhirgate/fhirgate/internal/resource"
)

// Sentinel errors. Backends translate driver errors into these; callers test
// with errors.Is.
var (
	ErrNotFound        = errors.New("store: not found")
	ErrDeleted         = errors.New("store: deleted")
	ErrExists          = errors.New("store: already exists")
	ErrVersionConflict = errors.New("store: version conflict")
)

// Version is one stored version of a resource. Body is the exact JSON served
// to clients (id and meta set); it is nil for a deletion.
type Version struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	// Method is the interaction that wrote the version: POST, PUT or DELETE.
	Method string
	Body   []byte
}

// HistoryQuery selects versions newest first. Type and ID empty: the whole
// system; ID empty: one type. Since and Before bound LastUpdated (Since
// inclusive, Before exclusive); zero values leave them open.
type HistoryQuery struct {
	Type   string
	ID     string
	Since  time.Time
	Before time.Time
	Count  int
	// After continues a previous page: only versions older than the cursor.
	After *HistoryCursor
}

// HistoryCursor marks a position in a history listing. It is opaque to
// clients (they get it inside a next link) and stable under concurrent
// writes, because new versions sort before every existing cursor.
type HistoryCursor struct {
	TS  int64 // LastUpdated in Unix microseconds
	Seq int64 // write sequence number, breaks ties
}

// HistoryPage is one page of history.
type HistoryPage struct {
	Versions []Version
	// Next is the cursor of the following page, nil on the last page.
	Next *HistoryCursor
}

// ResourceStore keeps resources with every version.
type ResourceStore interface {
	// Read returns the current version. A deleted resource gives its
	// deletion version together with ErrDeleted; an unknown one ErrNotFound.
	Read(ctx context.Context, typ, id string) (*Version, error)
	// VRead returns one version; ErrNotFound when it does not exist. A
	// deletion version is returned with ErrDeleted.
	VRead(ctx context.Context, typ, id string, vid int64) (*Version, error)
	// History lists versions newest first.
	History(ctx context.Context, q HistoryQuery) (*HistoryPage, error)
	// Write runs fn in one database transaction and commits when fn returns
	// nil; any error rolls everything back. fn may be called again when the
	// database asks for a retry (serialization failure), so it must not
	// have side effects outside the transaction.
	Write(ctx context.Context, fn func(tx Tx) error) error
}

// Tx is a write transaction on resources.
type Tx interface {
	// Read is ResourceStore.Read inside the transaction (it sees the
	// transaction's own writes).
	Read(ctx context.Context, typ, id string) (*Version, error)
	// Create stores r as version 1 under r.ID, which the caller has set.
	// ErrExists when the id is taken, even by a deleted resource.
	Create(ctx context.Context, r *resource.Resource) (*Version, error)
	// Update stores r as the next version of r.Type/r.ID, creating the
	// resource when it does not exist (update as create). With ifMatch > 0
	// the current version must be ifMatch, else ErrVersionConflict.
	Update(ctx context.Context, r *resource.Resource, ifMatch int64) (v *Version, created bool, err error)
	// Delete records a deletion version. ErrNotFound when the resource never
	// existed; deleting a deleted resource changes nothing and returns its
	// deletion version. ifMatch as for Update.
	Delete(ctx context.Context, typ, id string, ifMatch int64) (*Version, error)
	// Lock takes a lock named key until the transaction ends, so that
	// conditional operations on the same criteria serialize across
	// processes.
	Lock(ctx context.Context, key string) error
	// ScanType calls fn with the current body of every live resource of typ
	// until fn returns false. It exists for conditional operations on
	// criteria the search index does not cover.
	ScanType(ctx context.Context, typ string, fn func(id string, body []byte) bool) error
}

// ClientRecord is a registered client as stored: its JSON without the
// secret, and the secret's slow hash (empty when it has none).
type ClientRecord struct {
	ID         string
	Body       []byte
	SecretHash string
	UpdatedAt  time.Time
	// CreatedAt is when this registration of the id was made: a
	// replacement keeps it, a deletion and new registration changes it.
	// Set by the store.
	CreatedAt time.Time
}

// ClientStore keeps registered clients (the admin Client resource).
type ClientStore interface {
	GetClient(ctx context.Context, id string) (*ClientRecord, error)
	ListClients(ctx context.Context) ([]ClientRecord, error)
	// PutClient creates or replaces a client. An empty SecretHash keeps the
	// stored one, so that a read-modify-write of the JSON (which never
	// holds the secret) does not drop it.
	PutClient(ctx context.Context, c ClientRecord) (created bool, err error)
	DeleteClient(ctx context.Context, id string) error
}

// PolicyRecord is a stored AccessPolicy.
type PolicyRecord struct {
	ID        string
	Body      []byte
	UpdatedAt time.Time
}

// PolicyStore keeps AccessPolicy resources.
type PolicyStore interface {
	GetPolicy(ctx context.Context, id string) (*PolicyRecord, error)
	ListPolicies(ctx context.Context) ([]PolicyRecord, error)
	PutPolicy(ctx context.Context, p PolicyRecord) (created bool, err error)
	DeletePolicy(ctx context.Context, id string) error
}

// ConfigRevision counts changes to clients and policies. Every server
// process polls it to drop cached client and policy decisions that another
// process made stale.
type ConfigRevision interface {
	ConfigRevision(ctx context.Context) (int64, error)
}

// ReplayStore remembers client assertion ids (jti) so that each assertion is
// used once (SMART client-confidential-asymmetric: the server SHALL check
// jti for replay).
type ReplayStore interface {
	// UseJTI records (clientID, jti) until until and reports whether it was
	// fresh. It is atomic across goroutines and processes: of concurrent
	// calls with the same pair, exactly one gets true.
	UseJTI(ctx context.Context, clientID, jti string, until time.Time) (fresh bool, err error)
	// PurgeJTIs deletes records that expired before now.
	PurgeJTIs(ctx context.Context, now time.Time) (int64, error)
}

// SigningKey is one of fhirgate's own token-signing keys.
type SigningKey struct {
	KID string
	Alg string
	// Private is the private key, PKCS#8 PEM.
	Private   []byte
	CreatedAt time.Time
	// SignUntil is when the key stops signing new tokens.
	SignUntil time.Time
	// VerifyUntil is when tokens signed with it stop verifying and the key
	// leaves the published JWKS.
	VerifyUntil time.Time
}

// KeyStore keeps signing keys, shared by every server process.
type KeyStore interface {
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// PutSigningKey inserts a key; ErrExists when its kid is taken.
	PutSigningKey(ctx context.Context, k SigningKey) error
	// UpdateSigningKey changes SignUntil and VerifyUntil of a stored key.
	UpdateSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error
}

// Store is everything a fhirgate server needs from its database.
type Store interface {
	ResourceStore
	ClientStore
	PolicyStore
	ConfigRevision
	ReplayStore
	KeyStore
	// Ping checks that the database answers (for /health).
	Ping(ctx context.Context) error
	Close() error
}
