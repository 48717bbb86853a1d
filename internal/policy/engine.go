package policy

import (
	"context"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Request is what a policy decides on: one FHIR interaction (one batch or
// transaction entry counts as its own request).
type Request struct {
	Method       string // HTTP method, e.g. "GET"
	ResourceType string // "" at system level
	ID           string // resource id, "" when none
	Operation    string // e.g. "$export", "" when none
	Query        url.Values
	ClientID     string
	// TokenID is the jti of the caller's access token ("" for HTTP
	// Basic), written to the audit line so a decision can be traced to the
	// token that asked. It never takes part in the decision, and the
	// token itself is never logged.
	TokenID string
	// Path is the request path ("/fhir/Patient/123/_history"); when empty
	// it is rebuilt from ResourceType, ID and Operation.
	Path string
}

// Engine decides requests against the current set of AccessPolicies. The
// set is swapped atomically with Replace when policies change; decisions
// are cached per set, so a swap also drops the cache. Safe for concurrent
// use.
type Engine struct {
	logger    *slog.Logger
	cacheSize int
	snap      atomic.Pointer[snapshot]
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the audit logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.logger = l } }

// WithCacheSize bounds the decision cache (default 10,000; 0 or less
// disables it).
func WithCacheSize(n int) Option { return func(e *Engine) { e.cacheSize = n } }

// NewEngine returns an engine over policies.
func NewEngine(policies []*Policy, opts ...Option) *Engine {
	e := &Engine{logger: slog.Default(), cacheSize: 10_000}
	for _, o := range opts {
		o(e)
	}
	e.Replace(policies)
	return e
}

// Replace swaps in a new policy set; decisions made from now on use it and
// none cached from the old set survive. Call it whenever the store reports
// that an AccessPolicy was created, changed or deleted.
func (e *Engine) Replace(policies []*Policy) {
	e.snap.Store(newSnapshot(policies, e.cacheSize))
}

// snapshot is an immutable policy set with its own decision cache.
type snapshot struct {
	global   []*Policy
	byClient map[string][]*Policy
	cache    *decisionCache
}

func newSnapshot(policies []*Policy, cacheSize int) *snapshot {
	sorted := append([]*Policy(nil), policies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	s := &snapshot{byClient: map[string][]*Policy{}}
	for _, p := range sorted {
		if p.Global() {
			s.global = append(s.global, p)
			continue
		}
		for _, c := range p.Clients {
			s.byClient[c] = append(s.byClient[c], p)
		}
	}
	if cacheSize > 0 {
		s.cache = &decisionCache{max: cacheSize, m: map[string]decision{}}
	}
	return s
}

type decision struct {
	allowed bool
	reason  string
}

// Allow decides req: allowed when a policy that applies to the client (one
// linked to it, or one without links) evaluates true; denied otherwise,
// including when there are no policies at all (default deny: a client no
// policy allows gets 403 whatever its scopes). Every decision writes an
// audit line.
func (e *Engine) Allow(req Request) (allowed bool, reason string) {
	return e.AllowContext(context.Background(), req)
}

// AllowContext is Allow with a context for the audit line.
func (e *Engine) AllowContext(ctx context.Context, req Request) (bool, string) {
	s := e.snap.Load()
	key := cacheKey(req)
	d, cached := s.cache.get(key)
	if !cached {
		d = s.decide(req)
		s.cache.put(key, d)
	}
	e.audit(ctx, req, d)
	return d.allowed, d.reason
}

func (s *snapshot) decide(req Request) decision {
	candidates := s.byClient[req.ClientID]
	if len(s.global) > 0 {
		candidates = append(append([]*Policy(nil), s.global...), candidates...)
	}
	if len(candidates) == 0 {
		return decision{false, "no AccessPolicy applies to this client"}
	}
	obj := requestObject(req)
	for _, p := range candidates {
		if p.rule.eval(obj) {
			return decision{true, "AccessPolicy " + p.ID + " (" + p.Engine + ") allows"}
		}
	}
	return decision{false, "no AccessPolicy allows this request"}
}

// requestObject is the value matcho patterns are matched against; the
// package documentation lists its keys.
func requestObject(req Request) map[string]any {
	params := map[string]any{}
	for name, vals := range req.Query {
		if len(vals) == 1 {
			params[name] = vals[0]
		} else {
			arr := make([]any, len(vals))
			for i, v := range vals {
				arr[i] = v
			}
			params[name] = arr
		}
	}
	if req.ResourceType != "" {
		params["resource/type"] = req.ResourceType
	}
	if req.ID != "" {
		params["resource/id"] = req.ID
	}
	obj := map[string]any{
		"request-method": strings.ToLower(req.Method),
		"uri":            requestPath(req),
		"params":         params,
		"client":         map[string]any{"id": req.ClientID},
	}
	if req.Operation != "" {
		obj["operation"] = req.Operation
	}
	return obj
}

func requestPath(req Request) string {
	if req.Path != "" {
		return req.Path
	}
	p := "/fhir"
	for _, seg := range []string{req.ResourceType, req.ID, req.Operation} {
		if seg != "" {
			p += "/" + seg
		}
	}
	return p
}

// audit logs the decision with identifiers only: the token's jti but never
// the token, query parameter names but not their values, which may hold
// patient data.
func (e *Engine) audit(ctx context.Context, req Request, d decision) {
	names := make([]string, 0, len(req.Query))
	for n := range req.Query {
		names = append(names, n)
	}
	sort.Strings(names)
	verdict := "deny"
	if d.allowed {
		verdict = "allow"
	}
	e.logger.LogAttrs(ctx, slog.LevelInfo, "access decision",
		slog.String("audit", "access"),
		slog.String("client_id", req.ClientID),
		slog.String("jti", req.TokenID),
		slog.String("decision", verdict),
		slog.String("reason", d.reason),
		slog.String("method", req.Method),
		slog.String("resource_type", req.ResourceType),
		slog.String("id", req.ID),
		slog.String("operation", req.Operation),
		slog.String("query_params", strings.Join(names, ",")),
	)
}

func cacheKey(req Request) string {
	var b strings.Builder
	for _, s := range []string{req.ClientID, req.Method, req.ResourceType, req.ID, req.Operation, req.Path} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	b.WriteString(req.Query.Encode()) // Encode sorts by name
	return b.String()
}

// decisionCache is a bounded map of decisions for one snapshot; when full
// it starts over, which only costs re-evaluation.
type decisionCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]decision
}

func (c *decisionCache) get(key string) (decision, bool) {
	if c == nil {
		return decision{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.m[key]
	return d, ok
}

func (c *decisionCache) put(key string, d decision) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		c.m = make(map[string]decision, c.max)
	}
	c.m[key] = d
}

func (c *decisionCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
