package smart

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// Permission is a set of SMART v2 resource permissions, the letters of the
// ordered string "cruds" (scopes-and-launch-context.html, "Scopes for
// requesting FHIR Resources").
type Permission uint8

// The five SMART v2 permissions.
const (
	// PermCreate is "c": type-level create.
	PermCreate Permission = 1 << iota
	// PermRead is "r": read, vread and instance history.
	PermRead
	// PermUpdate is "u": update (including update-as-create) and patch.
	PermUpdate
	// PermDelete is "d": delete.
	PermDelete
	// PermSearch is "s": type search, type history, system search and system history.
	PermSearch
)

// Permission sets with a v1 spelling (SMART 2.2 maps v1 onto v2: ".read" is
// ".rs", ".write" is ".cud", ".*" is ".cruds").
const (
	PermV1Read  = PermRead | PermSearch
	PermV1Write = PermCreate | PermUpdate | PermDelete
	PermAll     = PermCreate | PermRead | PermUpdate | PermDelete | PermSearch
)

const permLetters = "cruds"

// String returns the v2 letters of p in their canonical order, e.g. "rs".
func (p Permission) String() string {
	var b strings.Builder
	for i := 0; i < len(permLetters); i++ {
		if p&(1<<i) != 0 {
			b.WriteByte(permLetters[i])
		}
	}
	return b.String()
}

// Has reports whether p holds every permission in q.
func (p Permission) Has(q Permission) bool { return p&q == q }

// ParsePermission parses v2 permission letters. They must be a non-empty
// subset of "cruds" in that order; SMART 2.2 lets servers reject
// out-of-order strings such as "dus", and fhirgate does, so that ".read"
// can never be read as ".rd".
func ParsePermission(s string) (Permission, error) {
	if s == "" {
		return 0, errors.New("no permission letters")
	}
	var p Permission
	next := 0
	for i := 0; i < len(s); i++ {
		j := strings.IndexByte(permLetters, s[i])
		if j < next {
			return 0, fmt.Errorf("permission %q is not a subset of %q in that order", s, permLetters)
		}
		p |= 1 << j
		next = j + 1
	}
	return p, nil
}

// v1Word returns the v1 spelling of p, if it has one.
func v1Word(p Permission) (string, bool) {
	switch p {
	case PermV1Read:
		return "read", true
	case PermV1Write:
		return "write", true
	case PermAll:
		return "*", true
	}
	return "", false
}

func parseV1(s string) (Permission, bool) {
	switch s {
	case "read":
		return PermV1Read, true
	case "write":
		return PermV1Write, true
	case "*":
		return PermAll, true
	}
	return 0, false
}

// Context is the first segment of a resource scope.
type Context string

// The three SMART resource-scope contexts.
const (
	ContextPatient Context = "patient"
	ContextUser    Context = "user"
	ContextSystem  Context = "system"
)

// WildcardType is the resource type of a scope that covers every type, now
// and in the future (SMART 2.2 "Wildcard scopes").
const WildcardType = "*"

// Sentinel errors wrapped by *ScopeError, so callers can tell why a scope
// was refused with errors.Is.
var (
	ErrScopeMalformed         = errors.New("malformed scope")
	ErrScopeUnknownType       = errors.New("unknown resource type")
	ErrScopeUnknownPermission = errors.New("unknown permission")
	ErrScopeNotResource       = errors.New("not a resource scope")
	ErrScopeContext           = errors.New("scope context not allowed")
	ErrScopeEmpty             = errors.New("no scope")
	ErrScopeNotGranted        = errors.New("nothing requested is within the registered scope")
)

// ScopeError reports a scope that cannot be accepted. Scope is the offending
// text (shortened), Reason a sentence for a developer; Err is one of the
// ErrScope sentinels.
type ScopeError struct {
	Scope  string
	Reason string
	Err    error
}

func (e *ScopeError) Error() string {
	if e.Scope == "" {
		return e.Reason
	}
	return fmt.Sprintf("scope %q: %s", e.Scope, e.Reason)
}

// Unwrap returns the sentinel.
func (e *ScopeError) Unwrap() error { return e.Err }

func scopeErr(s string, sentinel error, format string, args ...any) *ScopeError {
	const max = 80
	if len(s) > max {
		s = s[:max] + "..."
	}
	return &ScopeError{Scope: s, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// Scope is one SMART resource scope: context "/" type "." permissions, with an
// optional query restriction (SMART 2.2 "Finer-grained resource constraints
// using search parameters"), e.g. system/Observation.rs?category=laboratory.
type Scope struct {
	Context      Context
	ResourceType string // a FHIR R4 resource type or WildcardType
	Permissions  Permission
	// Query restricts the scope to resources matching every parameter; empty
	// means unrestricted.
	Query Query
	// V1 records that the scope was (or may be) spelled with the v1 words
	// read, write or *; String uses them when Permissions has a v1 spelling
	// and Query is empty (SMART 2.2 asks servers to answer v1 with v1).
	V1 bool
}

// nonResourceScopes are the launch and identity scopes of SMART App Launch,
// which Backend Services never grant.
var nonResourceScopes = map[string]bool{
	"launch": true, "openid": true, "fhirUser": true, "profile": true,
	"offline_access": true, "online_access": true,
}

// ParseScope parses one scope of the SMART v1 or v2 grammar
// (scopes-and-launch-context.html "FHIR Resource Scope Syntax"). Launch and
// identity scopes are refused with ErrScopeNotResource; the caller decides
// which contexts it accepts.
func ParseScope(s string) (Scope, error) {
	if err := checkScopeToken(s); err != nil {
		return Scope{}, err
	}
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok || !(ctx == "patient" || ctx == "user" || ctx == "system") {
		if nonResourceScopes[s] || strings.HasPrefix(s, "launch/") {
			return Scope{}, scopeErr(s, ErrScopeNotResource, "launch and identity scopes are not available here")
		}
		return Scope{}, scopeErr(s, ErrScopeMalformed, `a resource scope has the form system/<Type|*>.<permissions>`)
	}
	body, rawQuery, hasQuery := strings.Cut(rest, "?")
	typ, perm, ok := strings.Cut(body, ".")
	if !ok || typ == "" || perm == "" {
		return Scope{}, scopeErr(s, ErrScopeMalformed, `a resource scope has the form system/<Type|*>.<permissions>`)
	}
	if typ != WildcardType && !fhir.IsResourceType(typ) {
		return Scope{}, scopeErr(s, ErrScopeUnknownType, "%q is not a FHIR R4 resource type", typ)
	}
	sc := Scope{Context: Context(ctx), ResourceType: typ}
	if p, ok := parseV1(perm); ok {
		sc.Permissions, sc.V1 = p, true
	} else if p, err := ParsePermission(perm); err == nil {
		sc.Permissions = p
	} else {
		return Scope{}, scopeErr(s, ErrScopeUnknownPermission, "permissions must be read, write, * or letters of cruds in order")
	}
	if hasQuery {
		if sc.V1 {
			return Scope{}, scopeErr(s, ErrScopeMalformed, "a query restriction needs v2 permissions (letters of cruds)")
		}
		q, err := ParseQuery(rawQuery)
		if err != nil {
			return Scope{}, scopeErr(s, ErrScopeMalformed, "%v", err)
		}
		sc.Query = q
	}
	return sc, nil
}

// checkScopeToken enforces the scope-token characters of RFC 6749 §3.3:
// %x21 / %x23-5B / %x5D-7E.
func checkScopeToken(s string) error {
	if s == "" {
		return scopeErr(s, ErrScopeMalformed, "empty scope")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return scopeErr(s, ErrScopeMalformed, "character %q is not allowed in a scope (RFC 6749 §3.3)", c)
		}
	}
	return nil
}

// String renders the scope canonically: v1 words when V1 is set and the
// permissions have a v1 spelling, v2 letters otherwise.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteString(string(s.Context))
	b.WriteByte('/')
	b.WriteString(s.ResourceType)
	b.WriteByte('.')
	b.WriteString(s.permString())
	if len(s.Query) > 0 {
		b.WriteByte('?')
		b.WriteString(s.Query.String())
	}
	return b.String()
}

func (s Scope) permString() string {
	if s.V1 && len(s.Query) == 0 {
		if w, ok := v1Word(s.Permissions); ok {
			return w
		}
	}
	return s.Permissions.String()
}

// covers reports whether s applies to resourceType.
func (s Scope) covers(resourceType string) bool {
	return s.ResourceType == WildcardType || s.ResourceType == resourceType
}

// Scopes is a set of resource scopes: a request, a client's registered
// ceiling, or what a token grants. Scopes combine as a union (SMART 2.2
// "Scope equivalence").
type Scopes []Scope

// ParseScopes parses a space-separated scope parameter (RFC 6749 §3.3).
// Runs of spaces are tolerated; an empty string gives no scopes and no
// error, so the caller decides whether empty is acceptable. Duplicates are
// dropped.
func ParseScopes(s string) (Scopes, error) {
	return ParseScopeList(strings.Split(s, " "))
}

// ParseScopeList parses scopes given one per element (as a registered
// Client's "scope" array); empty elements are skipped.
func ParseScopeList(list []string) (Scopes, error) {
	var out Scopes
	seen := make(map[string]bool, len(list))
	for _, tok := range list {
		if tok == "" {
			continue
		}
		sc, err := ParseScope(tok)
		if err != nil {
			return nil, err
		}
		if k := sc.String(); !seen[k] {
			seen[k] = true
			out = append(out, sc)
		}
	}
	return out, nil
}

// String joins the scopes with single spaces, as the token response's
// "scope" member wants them.
func (ss Scopes) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// RequireContext returns a *ScopeError wrapping ErrScopeContext for the
// first scope whose context is not ctx. Backend Services grant system/
// scopes only; user/ and patient/ scopes need launch context it cannot give.
func (ss Scopes) RequireContext(ctx Context) error {
	for _, s := range ss {
		if s.Context != ctx {
			return scopeErr(s.String(), ErrScopeContext, "only %s/ scopes can be granted to this client", ctx)
		}
	}
	return nil
}
