package smart

// Intersect returns the part of ss (a request) that ceiling (what the
// client is registered for) allows: every requested scope is cut down to
// each ceiling scope it overlaps. SMART Backend Services apply requested
// scopes "as additional restrictions" on the pre-authorized ones
// (backend-services.html "Scopes"), and RFC 6749 §3.3 lets the server grant
// less than was asked. The result is normalized (see Normalize); an empty
// result means nothing can be granted.
//
// A v1 request keeps its v1 spelling where the granted permissions have one
// (SMART 2.2: servers SHOULD return v1 scopes when v1 scopes are requested).
func (ss Scopes) Intersect(ceiling Scopes) Scopes {
	var out Scopes
	for _, req := range ss {
		for _, c := range ceiling {
			if s, ok := intersectScope(req, c); ok {
				out = append(out, s)
			}
		}
	}
	return out.Normalize()
}

// intersectScope returns what both a and b allow; a's spelling wins.
func intersectScope(a, b Scope) (Scope, bool) {
	if a.Context != b.Context {
		return Scope{}, false
	}
	typ := a.ResourceType
	switch {
	case a.ResourceType == WildcardType:
		typ = b.ResourceType
	case b.ResourceType == WildcardType || b.ResourceType == a.ResourceType:
	default:
		return Scope{}, false
	}
	perms := a.Permissions & b.Permissions
	if perms == 0 {
		return Scope{}, false
	}
	return Scope{Context: a.Context, ResourceType: typ, Permissions: perms,
		Query: a.Query.And(b.Query), V1: a.V1}, true
}

// Normalize merges scopes that differ only in permissions and drops scopes
// that another scope already covers (SMART 2.2 recommends the shortest
// equivalent form). Order of first appearance is kept.
func (ss Scopes) Normalize() Scopes {
	merged := make(Scopes, 0, len(ss))
	for _, s := range ss {
		if i := indexSameTarget(merged, s); i >= 0 {
			merged[i].Permissions |= s.Permissions
			merged[i].V1 = merged[i].V1 && s.V1
			continue
		}
		merged = append(merged, s)
	}
	out := merged[:0:0]
	for i, s := range merged {
		if !subsumedByOther(merged, i) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func indexSameTarget(ss Scopes, s Scope) int {
	for i, x := range ss {
		if x.Context == s.Context && x.ResourceType == s.ResourceType && x.Query.equal(s.Query) {
			return i
		}
	}
	return -1
}

// subsumedByOther reports whether another scope grants everything ss[i] grants.
func subsumedByOther(ss Scopes, i int) bool {
	s := ss[i]
	for j, o := range ss {
		if j == i || o.Context != s.Context || !o.covers(s.ResourceType) ||
			!o.Permissions.Has(s.Permissions) || !s.Query.contains(o.Query) {
			continue
		}
		// o covers s. When both cover each other they are equal targets,
		// already merged, so this cannot remove both.
		return true
	}
	return false
}

// Access is what a set of scopes grants for one resource type and
// permission.
type Access struct {
	// Allowed is true when some scope grants the permission, with or
	// without a query restriction.
	Allowed bool
	// Filters is nil when access is unrestricted. Otherwise a resource is
	// accessible only if it matches at least one of the queries (each a
	// conjunction of search parameters), and the caller MUST apply them:
	// to a search as an added criterion, to a read by matching the resource.
	Filters []Query
}

// Access reports what ss grants for perm on resourceType. When perm holds
// several permissions, each must be granted; the filters then combine so
// that a resource must satisfy the restriction of every permission.
func (ss Scopes) Access(resourceType string, perm Permission) Access {
	if perm == 0 {
		return Access{}
	}
	result := Access{Allowed: true}
	for bit := Permission(1); bit <= PermSearch; bit <<= 1 {
		if perm&bit == 0 {
			continue
		}
		a := ss.accessBit(resourceType, bit)
		if !a.Allowed {
			return Access{}
		}
		result.Filters = andFilters(result.Filters, a.Filters)
	}
	return result
}

func (ss Scopes) accessBit(resourceType string, bit Permission) Access {
	var a Access
	for _, s := range ss {
		if !s.covers(resourceType) || !s.Permissions.Has(bit) {
			continue
		}
		if len(s.Query) == 0 {
			return Access{Allowed: true}
		}
		a.Allowed = true
		a.Filters = append(a.Filters, s.Query)
	}
	return a
}

// andFilters combines two OR-lists of queries into one: (a1 | a2) & (b1 | b2)
// is (a1&b1 | a1&b2 | a2&b1 | a2&b2). A nil list means unrestricted.
func andFilters(a, b []Query) []Query {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := make([]Query, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x.And(y))
		}
	}
	return out
}

// Allows reports whether ss grants every permission in perm on
// resourceType, possibly only for resources matching a query restriction:
// call Access to get the restrictions that must be applied.
func (ss Scopes) Allows(resourceType string, perm Permission) bool {
	return ss.Access(resourceType, perm).Allowed
}

// TypesAllowed lists the resource types on which ss grants perm: wildcard
// is true when a "*" scope grants it (then every type qualifies), and types
// names the explicit ones. System-level search, history and bulk export use
// it to limit themselves to permitted types; Access still gives the
// restrictions per type.
func (ss Scopes) TypesAllowed(perm Permission) (wildcard bool, types []string) {
	seen := map[string]bool{}
	for _, s := range ss {
		if !s.Permissions.Has(perm) {
			continue
		}
		if s.ResourceType == WildcardType {
			wildcard = true
			continue
		}
		if !seen[s.ResourceType] {
			seen[s.ResourceType] = true
			types = append(types, s.ResourceType)
		}
	}
	return wildcard, types
}

// Grant negotiates a token request's scope parameter against a client's
// registered ceiling, as SMART Backend Services requires: the request must
// be non-empty, well-formed system/ scopes, and at least part of it must lie
// within the ceiling. The error is a *ScopeError; the token endpoint
// answers it with invalid_scope (RFC 6749 §5.2).
func Grant(requested string, ceiling Scopes) (Scopes, error) {
	req, err := ParseScopes(requested)
	if err != nil {
		return nil, err
	}
	if len(req) == 0 {
		return nil, &ScopeError{Reason: "the scope parameter is required and must name at least one system/ scope", Err: ErrScopeEmpty}
	}
	if err := req.RequireContext(ContextSystem); err != nil {
		return nil, err
	}
	granted := req.Intersect(ceiling)
	if len(granted) == 0 {
		return nil, &ScopeError{Reason: "none of the requested scopes is within the scopes registered for this client", Err: ErrScopeNotGranted}
	}
	return granted, nil
}
