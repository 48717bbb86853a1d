package smart

// Interaction is a FHIR RESTful interaction (R4 http.html, the codes of
// TypeRestfulInteraction and SystemRestfulInteraction) that a scope check
// is made for. Batch and transaction have no scope of their own: each entry
// is checked as its own interaction (SMART 2.2 "Batches and transactions").
type Interaction string

// Interactions with their SMART v2 permission (scopes-and-launch-context.html
// "Scopes for requesting FHIR Resources").
const (
	InteractionRead            Interaction = "read"             // r
	InteractionVRead           Interaction = "vread"            // r
	InteractionHistoryInstance Interaction = "history-instance" // r
	InteractionHistoryType     Interaction = "history-type"     // s
	InteractionHistorySystem   Interaction = "history-system"   // s
	InteractionSearchType      Interaction = "search-type"      // s
	InteractionSearchSystem    Interaction = "search-system"    // s
	InteractionCreate          Interaction = "create"           // c
	InteractionUpdate          Interaction = "update"           // u (also update-as-create)
	InteractionPatch           Interaction = "patch"            // u
	InteractionDelete          Interaction = "delete"           // d
)

var interactionPerms = map[Interaction]Permission{
	InteractionRead:            PermRead,
	InteractionVRead:           PermRead,
	InteractionHistoryInstance: PermRead,
	InteractionHistoryType:     PermSearch,
	InteractionHistorySystem:   PermSearch,
	InteractionSearchType:      PermSearch,
	InteractionSearchSystem:    PermSearch,
	InteractionCreate:          PermCreate,
	InteractionUpdate:          PermUpdate,
	InteractionPatch:           PermUpdate,
	InteractionDelete:          PermDelete,
}

// Permission returns the SMART v2 permission the interaction needs; ok is
// false for an interaction this table does not know (the caller must then
// refuse). SMART 2.2 puts instance history under "r" and type and system
// history under "s".
func (i Interaction) Permission() (p Permission, ok bool) {
	p, ok = interactionPerms[i]
	return p, ok
}

// AllowsInteraction reports whether ss permit interaction i on
// resourceType, possibly only for resources matching a query restriction.
// For system-level interactions pass each resource type involved (or use
// TypesAllowed). Callers that serve data must still apply
// ss.Access(resourceType, perm).Filters.
func (ss Scopes) AllowsInteraction(resourceType string, i Interaction) bool {
	p, ok := i.Permission()
	return ok && ss.Allows(resourceType, p)
}

// AccessFor is Access for an interaction; an unknown interaction is denied.
func (ss Scopes) AccessFor(resourceType string, i Interaction) Access {
	p, ok := i.Permission()
	if !ok {
		return Access{}
	}
	return ss.Access(resourceType, p)
}
