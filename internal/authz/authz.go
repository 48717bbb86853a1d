// Package authz carries who is calling (the Principal, attached to the
// request context by the HTTP layer after authentication) and what they ask
// to do (a Request naming the FHIR interaction), and defines the Authorizer
// that decides. The FHIR service asks the Authorizer for every interaction,
// including each entry of a batch or transaction and each type of an
// export, because those never pass through per-route middleware.
package authz

import (
	"context"
	"net/url"
)

// Principal is an authenticated caller.
type Principal struct {
	// ClientID is the registered client, or "root" for the built-in admin.
	ClientID string
	// Root is the built-in admin client: full access, no policy applies.
	Root bool
	// Method is how the caller authenticated: "basic" or "bearer".
	Method string
	// Scope is the granted scope string of a bearer token ("" for Basic).
	Scope string
	// TokenID is the jti of the bearer token, for audit lines.
	TokenID string
	// Grant is the parsed scope, set by the authorization server; its type
	// belongs to the authorizer that reads it.
	Grant any
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller, or nil when the request is anonymous.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Interaction is a FHIR RESTful interaction (R4 http.html) or an operation.
type Interaction string

// Interactions. Their names are the codes of CapabilityStatement
// rest.resource.interaction and rest.interaction.
const (
	Read            Interaction = "read"
	VRead           Interaction = "vread"
	Update          Interaction = "update"
	Delete          Interaction = "delete"
	HistoryInstance Interaction = "history-instance"
	HistoryType     Interaction = "history-type"
	Create          Interaction = "create"
	SearchType      Interaction = "search-type"
	HistorySystem   Interaction = "history-system"
	SearchSystem    Interaction = "search-system"
	Batch           Interaction = "batch"
	Transaction     Interaction = "transaction"
	Operation       Interaction = "operation"
)

// Request describes one interaction for an authorization decision.
type Request struct {
	Interaction Interaction
	// Method is the HTTP method (of the batch entry, for entries).
	Method string
	// Type is the resource type; empty for system-level interactions.
	Type string
	// ID is the resource id for instance interactions.
	ID string
	// Operation is the operation name with its $, e.g. "$export".
	Operation string
	// Query holds the search or operation parameters.
	Query url.Values
	// Body is the resource being written (create and update), so that
	// policies and query-restricted scopes can check what is stored.
	Body []byte
}

// Authorizer decides whether the caller in ctx may perform req. It returns
// nil to allow, or a *fhir.Error: 401 when there is no caller, 403 when the
// caller lacks the permission.
type Authorizer interface {
	Authorize(ctx context.Context, req Request) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, req Request) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, req Request) error { return f(ctx, req) }
