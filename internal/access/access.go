// Package access decides every FHIR interaction for a caller: first the
// SMART scopes of its token (or of its Basic registration), then the
// AccessPolicy resources, default deny (Aidbox order: scope check, then
// policy, then data filtering; SPEC-CHECKLIST B13, F2). It implements
// authz.Authorizer and authz.Restrictor, and is the only place where the
// two meet, so REST, batch entries, search includes and export all get the
// same answer.
package access

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authserver"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/policy"
	"github.com/fhirgate/fhirgate/smart"
)

// Decider is the Authorizer and Restrictor of a fhirgate server.
type Decider struct {
	policies *policy.Engine
	log      *slog.Logger
}

// New returns a Decider over the policy engine; log receives audit lines
// for scope refusals (the policy engine writes its own).
func New(policies *policy.Engine, log *slog.Logger) *Decider {
	return &Decider{policies: policies, log: log}
}

var (
	_ authz.Authorizer = (*Decider)(nil)
	_ authz.Restrictor = (*Decider)(nil)
)

// grant returns the SMART principal behind an authenticated caller.
func grant(p *authz.Principal) *authserver.Principal {
	g, _ := p.Grant.(*authserver.Principal)
	return g
}

// tokenID is the jti of the caller's access token for audit lines: the
// one the HTTP layer put on the principal, else the grant's own.
func tokenID(p *authz.Principal, g *authserver.Principal) string {
	if p.TokenID == "" && g != nil {
		return g.TokenID
	}
	return p.TokenID
}

// Authorize implements authz.Authorizer.
func (d *Decider) Authorize(ctx context.Context, req authz.Request) error {
	p := authz.FromContext(ctx)
	switch {
	case p == nil:
		return fhir.Unauthorized("authentication required: send Authorization: Bearer <access token> from /auth/token")
	case p.Root:
		return nil
	}
	g := grant(p)
	if g == nil {
		return fhir.Forbidden("client %q has no grant", p.ClientID)
	}
	if scoped(req.Interaction) {
		if _, err := g.Authorize(req.Type, smart.Interaction(req.Interaction)); err != nil {
			d.audit(ctx, p, req, "scope", err)
			return err
		}
	}
	if req.Interaction == authz.Batch || req.Interaction == authz.Transaction {
		// The Bundle itself needs no permission: each entry is decided
		// on its own (SMART scopes-and-launch-context.html "Batches").
		return nil
	}
	ok, reason := d.policies.AllowContext(ctx, policy.Request{
		Method: methodOf(req), ResourceType: req.Type, ID: req.ID, Operation: req.Operation,
		Query: req.Query, ClientID: p.ClientID, TokenID: tokenID(p, g),
	})
	if !ok {
		return fhir.Forbidden("no AccessPolicy allows client %q to %s %s (%s); register one with PUT /AccessPolicy/{id}",
			p.ClientID, req.Interaction, target(req), reason)
	}
	return nil
}

// Restrictions implements authz.Restrictor: the query restrictions of the
// caller's scopes on typ for the interaction.
func (d *Decider) Restrictions(ctx context.Context, typ string, in authz.Interaction) ([]url.Values, error) {
	p := authz.FromContext(ctx)
	if p == nil || p.Root {
		return nil, nil
	}
	g := grant(p)
	if g == nil {
		return nil, fhir.Forbidden("client %q has no grant", p.ClientID)
	}
	a, err := g.Authorize(typ, smart.Interaction(in))
	if err != nil {
		return nil, err
	}
	if a.Filters == nil {
		return nil, nil
	}
	out := make([]url.Values, len(a.Filters))
	for i, q := range a.Filters {
		out[i] = q.Values()
	}
	return out, nil
}

// scoped reports whether an interaction is governed by a SMART scope
// permission; operations decide their own types (an export checks each
// type it exports), and bundles decide per entry.
func scoped(in authz.Interaction) bool {
	switch in {
	case authz.Batch, authz.Transaction, authz.Operation:
		return false
	}
	return true
}

func methodOf(req authz.Request) string {
	if req.Method != "" {
		return req.Method
	}
	switch req.Interaction {
	case authz.Create:
		return http.MethodPost
	case authz.Update:
		return http.MethodPut
	case authz.Delete:
		return http.MethodDelete
	}
	return http.MethodGet
}

func target(req authz.Request) string {
	switch {
	case req.Type == "":
		return "at system level"
	case req.ID != "":
		return req.Type + "/" + req.ID
	}
	return req.Type
}

// audit writes the line of a scope refusal; the policy engine logs policy
// decisions. Never the token: only its id.
func (d *Decider) audit(ctx context.Context, p *authz.Principal, req authz.Request, stage string, err error) {
	reason := err.Error()
	if fe := fhir.AsError(err); fe != nil {
		reason = fe.Diagnostics
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "access decision",
		slog.String("audit", "access"), slog.String("client_id", p.ClientID), slog.String("decision", "deny"),
		slog.String("stage", stage), slog.String("interaction", string(req.Interaction)),
		slog.String("type", req.Type), slog.String("jti", tokenID(p, grant(p))), slog.String("reason", reason))
}
