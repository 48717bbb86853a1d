package authz

import (
	"context"
	"net/url"
)

// Restrictor reports the extra search criteria that the caller's grant
// imposes on a resource type: SMART v2 query-restricted scopes such as
// system/Observation.rs?category=laboratory (scopes-and-launch-context.html,
// "Finer-grained resource constraints"). Search, read and export apply them
// so that a caller never sees a resource outside its grant.
type Restrictor interface {
	// Restrictions returns nil when the caller may see every resource of
	// typ for the interaction; otherwise a list of queries of which a
	// resource must match at least one (each query's parameters all apply).
	Restrictions(ctx context.Context, typ string, in Interaction) ([]url.Values, error)
}

// NoRestrictions is the Restrictor of a server without query-restricted
// scopes.
var NoRestrictions Restrictor = noRestrictions{}

type noRestrictions struct{}

func (noRestrictions) Restrictions(context.Context, string, Interaction) ([]url.Values, error) {
	return nil, nil
}
