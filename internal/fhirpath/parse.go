package fhirpath

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Expr is a compiled FHIRPath expression.
type Expr struct {
	src  string
	root node
}

// String returns the source text of e.
func (e *Expr) String() string { return e.src }

// Parse compiles src. It fails on syntax outside the supported subset,
// including unknown functions, so that a bad expression is caught once at
// registry load rather than on every write.
func Parse(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	p := &parser{toks: toks, src: src}
	n, err := p.expr()
	if err == nil && p.peek().kind != tokEOF {
		err = fmt.Errorf("at %d: unexpected %q", p.peek().pos, p.peek().text)
	}
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	return &Expr{src: src, root: n}, nil
}

// MustParse is Parse for expressions known to be valid; it panics on error.
func MustParse(src string) *Expr {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

type parser struct {
	toks []token
	i    int
	src  string
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == s
}

func (p *parser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tokIdent && t.text == s
}

func (p *parser) expect(s string) error {
	if !p.isOp(s) {
		return fmt.Errorf("at %d: want %q, got %q", p.peek().pos, s, p.peek().text)
	}
	p.next()
	return nil
}

// Precedence, lowest first (FHIRPath N1 §6 "Operator precedence"):
// or/xor, and, equality, union, type operators, postfix.
func (p *parser) expr() (node, error) {
	l, err := p.andExpr()
	for err == nil && (p.isWord("or") || p.isWord("xor")) {
		op := p.next().text
		var r node
		if r, err = p.andExpr(); err == nil {
			l = &boolNode{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) andExpr() (node, error) {
	l, err := p.eqExpr()
	for err == nil && p.isWord("and") {
		p.next()
		var r node
		if r, err = p.eqExpr(); err == nil {
			l = &boolNode{op: "and", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) eqExpr() (node, error) {
	l, err := p.unionExpr()
	for err == nil && (p.isOp("=") || p.isOp("!=")) {
		op := p.next().text
		var r node
		if r, err = p.unionExpr(); err == nil {
			l = &eqNode{not: op == "!=", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) unionExpr() (node, error) {
	start := p.peek().pos
	l, err := p.typeExpr()
	if err != nil || !p.isOp("|") {
		return l, err
	}
	u := &unionNode{branches: []node{l}, srcs: []string{p.span(start)}}
	for p.isOp("|") {
		p.next()
		start = p.peek().pos
		r, err := p.typeExpr()
		if err != nil {
			return nil, err
		}
		u.branches = append(u.branches, r)
		u.srcs = append(u.srcs, p.span(start))
	}
	return u, nil
}

// span is the source text from start to the current token.
func (p *parser) span(start int) string {
	return strings.TrimSpace(p.src[start:p.peek().pos])
}

func (p *parser) typeExpr() (node, error) {
	l, err := p.postfix()
	for err == nil && (p.isWord("is") || p.isWord("as")) {
		op := p.next().text
		var t string
		if t, err = p.typeSpec(); err == nil {
			l = &typeNode{op: op, x: l, typ: t}
		}
	}
	return l, err
}

// typeSpec reads a type name, dropping a FHIR. or System. namespace.
func (p *parser) typeSpec() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", fmt.Errorf("at %d: want a type name, got %q", t.pos, t.text)
	}
	name := t.text
	if (name == "FHIR" || name == "System") && p.isOp(".") {
		p.next()
		if t = p.next(); t.kind != tokIdent {
			return "", fmt.Errorf("at %d: want a type name, got %q", t.pos, t.text)
		}
		name = t.text
	}
	return name, nil
}

func (p *parser) postfix() (node, error) {
	n, err := p.term()
	for err == nil {
		switch {
		case p.isOp("."):
			p.next()
			var r node
			if r, err = p.invocation(false); err == nil {
				n = &dotNode{l: n, r: r}
			}
		case p.isOp("["):
			p.next()
			var idx node
			if idx, err = p.expr(); err == nil {
				if err = p.expect("]"); err == nil {
					n = &indexNode{x: n, idx: idx}
				}
			}
		default:
			return n, nil
		}
	}
	return nil, err
}

func (p *parser) term() (node, error) {
	t := p.peek()
	switch t.kind {
	case tokString:
		p.next()
		return &litNode{item: Item{Value: t.text, Type: "string"}}, nil
	case tokNumber:
		p.next()
		return &litNode{item: Item{Value: json.Number(t.text), Type: "decimal"}}, nil
	case tokVar:
		p.next()
		switch t.text {
		case "resource", "rootResource", "context":
			return &varNode{name: t.text}, nil
		}
		return nil, fmt.Errorf("at %d: unknown variable %%%s", t.pos, t.text)
	case tokThis:
		p.next()
		if t.text != "this" {
			return nil, fmt.Errorf("at %d: unsupported $%s", t.pos, t.text)
		}
		return thisNode{}, nil
	case tokIdent:
		if t.text == "true" || t.text == "false" {
			p.next()
			return &litNode{item: Item{Value: t.text == "true", Type: "boolean"}}, nil
		}
		return p.invocation(true)
	case tokOp:
		if t.text == "(" {
			p.next()
			n, err := p.expr()
			if err != nil {
				return nil, err
			}
			return n, p.expect(")")
		}
	}
	return nil, fmt.Errorf("at %d: unexpected %q", t.pos, t.text)
}

// invocation reads a member name or a function call. root tells whether it
// starts a path, where a capitalized name is a type test on the context
// (FHIRPath N1 §4.1 "Path selection": `Observation.code`).
func (p *parser) invocation(root bool) (node, error) {
	t := p.next()
	if t.kind != tokIdent {
		return nil, fmt.Errorf("at %d: want a name, got %q", t.pos, t.text)
	}
	if !p.isOp("(") {
		if root && t.text[0] >= 'A' && t.text[0] <= 'Z' {
			return &rootTypeNode{typ: t.text}, nil
		}
		return &memberNode{name: t.text, choice: choiceNames[t.text]}, nil
	}
	p.next()
	var args []node
	for !p.isOp(")") {
		if len(args) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	p.next()
	return newFunc(t, args)
}

// arity of the supported functions: min, max arguments.
var arity = map[string][2]int{
	"where": {1, 1}, "exists": {0, 1}, "empty": {0, 0}, "not": {0, 0},
	"first": {0, 0}, "last": {0, 0}, "count": {0, 0}, "hasValue": {0, 0},
	"resolve": {0, 0}, "ofType": {1, 1}, "as": {1, 1}, "is": {1, 1},
	"extension": {1, 1},
}

func newFunc(t token, args []node) (node, error) {
	ar, ok := arity[t.text]
	if !ok {
		return nil, fmt.Errorf("at %d: unsupported function %s()", t.pos, t.text)
	}
	if len(args) < ar[0] || len(args) > ar[1] {
		return nil, fmt.Errorf("at %d: %s() takes %d to %d arguments, got %d", t.pos, t.text, ar[0], ar[1], len(args))
	}
	switch t.text {
	case "ofType", "as", "is":
		typ, ok := typeName(args[0])
		if !ok {
			return nil, fmt.Errorf("at %d: %s() wants a type name", t.pos, t.text)
		}
		op := t.text
		if op == "ofType" {
			op = "as"
		}
		return &typeNode{op: op, typ: typ}, nil
	case "extension":
		lit, ok := args[0].(*litNode)
		s, isStr := lit.item.Value.(string)
		if !ok || !isStr {
			return nil, fmt.Errorf("at %d: extension() wants a string literal", t.pos)
		}
		return &extensionNode{url: s}, nil
	}
	return &funcNode{name: t.text, args: args}, nil
}

// typeName reads a type specifier given as a function argument.
func typeName(n node) (string, bool) {
	switch n := n.(type) {
	case *rootTypeNode:
		return n.typ, true
	case *memberNode: // lower-case primitive type names: as(string)
		return n.name, true
	case *dotNode:
		if ns, ok := n.l.(*rootTypeNode); ok && (ns.typ == "FHIR" || ns.typ == "System") {
			return typeName(n.r)
		}
	}
	return "", false
}

// ForType returns the part of e that can select anything from a resource of
// type t: the branches of a top-level union whose path starts with another
// resource type are dropped (they select nothing from t). It returns nil when
// no branch is left. Shared parameters such as clinical-patient list 32 types
// in one union; pruning makes each type evaluate only its own branch.
func (e *Expr) ForType(t string) *Expr {
	u, ok := e.root.(*unionNode)
	if !ok {
		if rootType(e.root, t) {
			return e
		}
		return nil
	}
	var keep []node
	var parts []string
	for i, b := range u.branches {
		if rootType(b, t) {
			keep = append(keep, b)
			parts = append(parts, u.srcs[i])
		}
	}
	switch len(keep) {
	case 0:
		return nil
	case len(u.branches):
		return e
	case 1:
		return &Expr{src: parts[0], root: keep[0]}
	}
	return &Expr{src: strings.Join(parts, " | "), root: &unionNode{branches: keep, srcs: parts}}
}

// rootType reports whether n may select from a resource of type t: its path
// starts with t, Resource or DomainResource, or with no type at all.
func rootType(n node, t string) bool {
	for {
		switch x := n.(type) {
		case *dotNode:
			n = x.l
		case *indexNode:
			n = x.x
		case *typeNode:
			if x.x == nil {
				return true
			}
			n = x.x
		case *rootTypeNode:
			return x.typ == t || x.typ == "Resource" || x.typ == "DomainResource"
		case *unionNode:
			for _, b := range x.branches {
				if rootType(b, t) {
					return true
				}
			}
			return false
		default:
			return true
		}
	}
}
