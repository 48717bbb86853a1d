package authz

import (
	"context"

	"github.com/fhirgate/fhirgate/fhir"
)

// RootOnly allows the built-in root client everything and everyone else
// nothing. It is the authorizer of a server without the SMART authorization
// server wired in, and the fallback that keeps such a server closed.
var RootOnly Authorizer = AuthorizerFunc(func(ctx context.Context, req Request) error {
	p := FromContext(ctx)
	switch {
	case p == nil:
		return fhir.Unauthorized("authentication required: send Authorization: Bearer <access token> or HTTP Basic credentials")
	case p.Root:
		return nil
	default:
		return fhir.Forbidden("client %q may not %s %s", p.ClientID, req.Interaction, req.Type)
	}
})
