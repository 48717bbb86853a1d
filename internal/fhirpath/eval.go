package fhirpath

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// Item is one element of a FHIRPath collection: a value decoded from JSON
// (map[string]any, []any, string, json.Number, float64, bool) and, when
// known, its FHIR type. The type is known for choice elements (valueQuantity
// has type Quantity), literals, and resolve() stand-ins; resources carry
// their type in resourceType.
type Item struct {
	Value any
	Type  string
}

// env is the state of one evaluation.
type env struct {
	resource any
	err      error
	focus    [1]Item // the initial input, kept here to save an allocation
}

func (e *env) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

type node interface {
	eval(e *env, in []Item) []Item
}

// Eval evaluates e with resource, a decoded JSON object, as both the context
// and %resource.
func (e *Expr) Eval(resource any) ([]Item, error) {
	return e.EvalOn(Item{Value: resource}, resource)
}

// EvalOn evaluates e with focus as the context and resource as %resource.
// Composite search parameters evaluate their components this way, on each
// item the composite's own expression selected.
func (e *Expr) EvalOn(focus Item, resource any) ([]Item, error) {
	ev := &env{resource: resource, focus: [1]Item{focus}}
	out := e.root.eval(ev, ev.focus[:])
	if ev.err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", e.src, ev.err)
	}
	return out, nil
}

// rootTypeNode is a capitalized name that starts a path: it keeps the
// context if the context is of that type.
type rootTypeNode struct{ typ string }

func (n *rootTypeNode) eval(_ *env, in []Item) []Item {
	if len(in) == 1 { // the usual case: the resource itself, passed through
		if in[0].Type == n.typ || resourceIs(in[0].Value, n.typ) {
			return in
		}
		return nil
	}
	var out []Item
	for _, it := range in {
		if it.Type == n.typ || resourceIs(it.Value, n.typ) {
			out = append(out, it)
		}
	}
	return out
}

// memberNode selects a child element by name, flattening arrays. A missing
// name is looked up as a choice element: `value` finds valueQuantity with
// type Quantity (FHIR R4 formats.html#choice).
type memberNode struct {
	name   string
	choice bool // name is a choice element somewhere in R4
}

func (n *memberNode) eval(_ *env, in []Item) []Item {
	var out []Item
	for _, it := range in {
		m, ok := it.Value.(map[string]any)
		if !ok {
			continue
		}
		if v, ok := m[n.name]; ok {
			out = appendValue(out, v, "")
			continue
		}
		if !n.choice {
			continue
		}
		for k, v := range m {
			if len(k) > len(n.name) && k[:len(n.name)] == n.name {
				if t := k[len(n.name):]; choiceTypes[t] {
					out = appendValue(out, v, t)
				}
			}
		}
	}
	return out
}

func appendValue(out []Item, v any, typ string) []Item {
	switch v := v.(type) {
	case nil:
	case []any:
		for _, x := range v {
			if x != nil {
				out = append(out, Item{Value: x, Type: typ})
			}
		}
	default:
		out = append(out, Item{Value: v, Type: typ})
	}
	return out
}

type dotNode struct{ l, r node }

func (n *dotNode) eval(e *env, in []Item) []Item {
	left := n.l.eval(e, in)
	if _, member := n.r.(*memberNode); member && len(left) == 0 {
		return nil
	}
	return n.r.eval(e, left) // functions such as exists() see an empty input too
}

type indexNode struct{ x, idx node }

func (n *indexNode) eval(e *env, in []Item) []Item {
	xs := n.x.eval(e, in)
	ix := n.idx.eval(e, in)
	if len(ix) != 1 {
		return nil
	}
	i, ok := toInt(ix[0].Value)
	if !ok {
		e.fail("index is not an integer")
		return nil
	}
	if i < 0 || i >= len(xs) {
		return nil
	}
	return xs[i : i+1 : i+1]
}

type unionNode struct {
	branches []node
	srcs     []string
}

// eval concatenates the branches. FHIRPath's union also removes duplicates;
// the search extractor removes duplicate index rows instead, which is
// cheaper than comparing decoded JSON values here.
func (n *unionNode) eval(e *env, in []Item) []Item {
	var out []Item
	for _, b := range n.branches {
		out = append(out, b.eval(e, in)...)
	}
	return out
}

// typeNode is `x as T`, `x is T`, and the function forms as(T), is(T) and
// ofType(T) (x nil: applied to the input).
type typeNode struct {
	op  string // "as" or "is"
	x   node
	typ string
}

func (n *typeNode) eval(e *env, in []Item) []Item {
	xs := in
	if n.x != nil {
		xs = n.x.eval(e, in)
	}
	if n.op == "is" {
		if len(xs) == 0 {
			return nil
		}
		if len(xs) > 1 {
			e.fail("is %s on a collection of %d items", n.typ, len(xs))
			return nil
		}
		return boolItems(isType(xs[0], n.typ))
	}
	var out []Item
	for _, it := range xs {
		if isType(it, n.typ) {
			out = append(out, it)
		}
	}
	return out
}

type litNode struct{ item Item }

func (n *litNode) eval(*env, []Item) []Item { return []Item{n.item} }

type varNode struct{ name string }

func (n *varNode) eval(e *env, _ []Item) []Item {
	if e.resource == nil {
		return nil
	}
	return []Item{{Value: e.resource}}
}

type thisNode struct{}

func (thisNode) eval(_ *env, in []Item) []Item { return in }

type extensionNode struct{ url string }

func (n *extensionNode) eval(_ *env, in []Item) []Item {
	var out []Item
	for _, it := range in {
		m, _ := it.Value.(map[string]any)
		exts, _ := m["extension"].([]any)
		for _, x := range exts {
			if xm, ok := x.(map[string]any); ok && xm["url"] == n.url {
				out = append(out, Item{Value: xm, Type: "Extension"})
			}
		}
	}
	return out
}

// eqNode is `=` and `!=` (FHIRPath N1 §6.1 Equality): empty if either side
// is empty, false if the sizes differ, else item by item.
type eqNode struct {
	not  bool
	l, r node
}

func (n *eqNode) eval(e *env, in []Item) []Item {
	l, r := n.l.eval(e, in), n.r.eval(e, in)
	if len(l) == 0 || len(r) == 0 {
		return nil
	}
	eq := len(l) == len(r)
	for i := 0; eq && i < len(l); i++ {
		eq = valuesEqual(l[i].Value, r[i].Value)
	}
	return boolItems(eq != n.not)
}

func valuesEqual(a, b any) bool {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case json.Number, float64:
		fa, okA := toFloat(a)
		fb, okB := toFloat(b)
		return okA && okB && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

// boolNode is and, or and xor with FHIRPath's three-valued logic, where an
// empty collection is unknown (N1 §6.5 Boolean logic).
type boolNode struct {
	op   string
	l, r node
}

func (n *boolNode) eval(e *env, in []Item) []Item {
	l, lok := truth(e, n.l.eval(e, in))
	r, rok := truth(e, n.r.eval(e, in))
	switch n.op {
	case "and":
		switch {
		case (lok && !l) || (rok && !r):
			return boolItems(false)
		case lok && rok:
			return boolItems(true)
		}
	case "or":
		switch {
		case (lok && l) || (rok && r):
			return boolItems(true)
		case lok && rok:
			return boolItems(false)
		}
	case "xor":
		if lok && rok {
			return boolItems(l != r)
		}
	}
	return nil
}

// truth converts a collection to a boolean by singleton evaluation (N1
// §4.5): empty is unknown, one boolean is itself, one other item is true.
func truth(e *env, c []Item) (value, known bool) {
	switch len(c) {
	case 0:
		return false, false
	case 1:
		if b, ok := c[0].Value.(bool); ok {
			return b, true
		}
		return true, true
	}
	e.fail("a collection of %d items used as a boolean", len(c))
	return false, false
}

var (
	trueItems  = []Item{{Value: true, Type: "boolean"}}
	falseItems = []Item{{Value: false, Type: "boolean"}}
)

// boolItems returns a shared one-item collection; callers never append to a
// node's result in place, so sharing is safe.
func boolItems(b bool) []Item {
	if b {
		return trueItems[:1:1]
	}
	return falseItems[:1:1]
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(string(v))
		return i, err == nil
	case float64:
		return int(v), v == float64(int(v))
	}
	return 0, false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	}
	return 0, false
}
