package httpapi

import (
	"net/http"
	"strings"
)

// OpLevel is where an operation is invoked (R4 operations.html).
type OpLevel int

// Operation levels.
const (
	SystemLevel OpLevel = iota
	TypeLevel
	InstanceLevel
)

// Operation is a FHIR operation served under /fhir, such as $export. Its
// handler runs after authentication; authorization is its own job, because
// only it knows what the operation touches.
type Operation struct {
	Name  string // with the $, e.g. "$export"
	Level OpLevel
	// Type restricts type and instance operations to one resource type.
	Type string
	// RootOnly makes it an admin operation: only root may invoke it, and
	// without a root secret it answers 401 to everyone, as the admin API
	// does (CONTRACT.md, --root-secret).
	RootOnly bool
	Handler  func(w http.ResponseWriter, r *http.Request, typ, id string)
}

// AddOperation registers an operation; call it before serving.
func (s *Server) AddOperation(op Operation) { s.ops = append(s.ops, op) }

type matchedOp struct {
	Operation
	typ, id string
}

func (m *matchedOp) route() string {
	switch m.Level {
	case TypeLevel:
		return "/fhir/" + m.typ + "/" + m.Name
	case InstanceLevel:
		return "/fhir/" + m.typ + "/{id}/" + m.Name
	}
	return "/fhir/" + m.Name
}

func (s *Server) findOperation(seg []string) *matchedOp {
	if len(seg) == 0 || !strings.HasPrefix(seg[len(seg)-1], "$") {
		return nil
	}
	name := seg[len(seg)-1]
	for _, op := range s.ops {
		if op.Name != name {
			continue
		}
		switch {
		case op.Level == SystemLevel && len(seg) == 1:
			return &matchedOp{Operation: op}
		case op.Level == TypeLevel && len(seg) == 2 && (op.Type == "" || op.Type == seg[0]):
			return &matchedOp{Operation: op, typ: seg[0]}
		case op.Level == InstanceLevel && len(seg) == 3 && (op.Type == "" || op.Type == seg[0]):
			return &matchedOp{Operation: op, typ: seg[0], id: seg[1]}
		}
	}
	return nil
}
