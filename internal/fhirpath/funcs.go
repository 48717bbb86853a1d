package fhirpath

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

type funcNode struct {
	name string
	args []node
}

func (n *funcNode) eval(e *env, in []Item) []Item {
	switch n.name {
	case "where":
		var out []Item
		for _, it := range in {
			if ok, known := truth(e, n.args[0].eval(e, []Item{it})); known && ok {
				out = append(out, it)
			}
		}
		return out
	case "exists":
		if len(n.args) == 1 {
			in = (&funcNode{name: "where", args: n.args}).eval(e, in)
		}
		return boolItems(len(in) > 0)
	case "empty":
		return boolItems(len(in) == 0)
	case "not":
		if b, known := truth(e, in); known {
			return boolItems(!b)
		}
		return nil
	case "first":
		if len(in) == 0 {
			return nil
		}
		return in[:1:1]
	case "last":
		if len(in) == 0 {
			return nil
		}
		return in[len(in)-1:]
	case "count":
		return []Item{{Value: json.Number(strconv.Itoa(len(in))), Type: "integer"}}
	case "hasValue":
		if len(in) != 1 {
			return boolItems(false)
		}
		switch in[0].Value.(type) {
		case string, bool, json.Number, float64:
			return boolItems(true)
		}
		return boolItems(false)
	case "resolve":
		var out []Item
		for _, it := range in {
			if r, ok := resolve(e, it); ok {
				out = append(out, r)
			}
		}
		return out
	}
	e.fail("unsupported function %s()", n.name)
	return nil
}

// resolve returns a stand-in for the resource a Reference (or a canonical
// string) points to, typed by the target type. A local "#id" reference
// yields the contained resource itself.
func resolve(e *env, it Item) (Item, bool) {
	var ref string
	switch v := it.Value.(type) {
	case string:
		ref = v
	case map[string]any:
		ref, _ = v["reference"].(string)
		if ref == "" {
			if t, ok := v["type"].(string); ok && fhir.IsResourceType(t) {
				return Item{Value: v, Type: t}, true
			}
			return Item{}, false
		}
	default:
		return Item{}, false
	}
	if strings.HasPrefix(ref, "#") {
		return contained(e, ref[1:])
	}
	if t, _, ok := SplitReference(ref); ok {
		return Item{Value: it.Value, Type: t}, true
	}
	return Item{}, false
}

func contained(e *env, id string) (Item, bool) {
	root, _ := e.resource.(map[string]any)
	list, _ := root["contained"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && m["id"] == id {
			t, _ := m["resourceType"].(string)
			return Item{Value: m, Type: t}, true
		}
	}
	return Item{}, false
}

// SplitReference parses a literal reference, relative ("Patient/123",
// "Patient/123/_history/2") or absolute ("https://x/fhir/Patient/123"),
// into its resource type and id. ok is false when the reference does not
// end in Type/id with an R4 resource type and a valid id (a urn:uuid:, a
// "#local" reference, a canonical URL of another shape).
func SplitReference(ref string) (typ, id string, ok bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		return "", "", false
	}
	j := strings.LastIndexByte(ref, '/')
	if j <= 0 {
		return "", "", false
	}
	id = ref[j+1:]
	k := strings.LastIndexByte(ref[:j], '/')
	typ = ref[k+1 : j]
	if !fhir.IsResourceType(typ) || !fhir.ValidID(id) {
		return "", "", false
	}
	return typ, id, true
}

// choiceTypes are the type suffixes a choice element may carry in JSON: the
// R4 open type list (datatypes.html#open) plus Meta.
var choiceTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Fields(`Base64Binary Boolean Canonical Code Date DateTime Decimal Id
		Instant Integer Markdown Oid PositiveInt String Time UnsignedInt Uri Url Uuid Address Age
		Annotation Attachment CodeableConcept Coding ContactPoint Count Distance Duration HumanName
		Identifier Money Period Quantity Range Ratio Reference SampledData Signature Timing
		ContactDetail Contributor DataRequirement Expression ParameterDefinition RelatedArtifact
		TriggerDefinition UsageContext Dosage Meta`) {
		m[t] = true
	}
	return m
}()

// quantityKinds are the profiles of Quantity, which `as Quantity` accepts.
var quantityKinds = map[string]bool{"Age": true, "Count": true, "Distance": true, "Duration": true,
	"SimpleQuantity": true, "MoneyQuantity": true}

// isType tells whether it is of type t. Choice element types are spelled
// with a capital in JSON (valueDateTime) and in some expressions
// (as(DateTime)); primitive type names are lower case (dateTime), so the
// first letter is compared without case.
func isType(it Item, t string) bool {
	if it.Type != "" {
		return sameTypeName(it.Type, t) || (t == "Quantity" && quantityKinds[it.Type])
	}
	return resourceIs(it.Value, t)
}

func sameTypeName(a, b string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	return a[1:] == b[1:] && (a[0]|0x20) == (b[0]|0x20)
}

// resourceIs tells whether v is a resource of type t (Resource and
// DomainResource match any resource).
func resourceIs(v any, t string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	rt, ok := m["resourceType"].(string)
	return ok && (rt == t || t == "Resource" || t == "DomainResource")
}

// ChoiceKey reports whether key is the JSON name of choice element name
// with a type suffix (valueQuantity for value) and returns the type.
func ChoiceKey(name, key string) (typ string, ok bool) {
	if len(key) <= len(name) || key[:len(name)] != name || !choiceNames[name] {
		return "", false
	}
	typ = key[len(name):]
	return typ, choiceTypes[typ]
}
