package search

import (
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// parseValues adds the comma-separated alternatives of raw to c (or to the
// criterion at the end of c's reverse chain) and returns how many it added.
func parseValues(c *Clause, raw string) (int, error) {
	for c.Has != nil {
		c = &c.Has.Clause
	}
	for _, part := range splitEscaped(raw, ',') {
		if part == "" {
			continue
		}
		op, err := parseOperand(c.Name, c.Param, c.Modifier, c.TargetType, part)
		if err != nil {
			return 0, err
		}
		c.Values = append(c.Values, op)
	}
	return len(c.Values), nil
}

// parseOperand parses one value s (escapes still in) for param.
func parseOperand(key string, param *Param, mod Modifier, targetType, s string) (Operand, error) {
	op := Operand{Raw: unescape(s), Type: param.Type}
	if mod == ModifierMissing {
		switch op.Raw {
		case "true", "false":
			op.Missing = op.Raw == "true"
			return op, nil
		}
		return op, invalid(key, ":missing wants true or false, got %q", op.Raw)
	}
	var err error
	switch param.Type {
	case TypeString:
		op.String = StringValue{Norm: Normalize(op.Raw), Exact: op.Raw}
	case TypeToken:
		err = parseToken(key, mod, s, &op)
	case TypeDate:
		var rest string
		if op.Prefix, rest, err = cutPrefix(key, op.Raw); err == nil {
			if op.Date, err = ParseDateRange(rest); err != nil {
				err = invalid(key, "invalid date %q", rest)
			}
		}
	case TypeNumber:
		var rest string
		if op.Prefix, rest, err = cutPrefix(key, op.Raw); err == nil {
			if op.Number, err = ParseNumber(rest); err != nil {
				err = invalid(key, "invalid number %q", rest)
			}
		}
	case TypeQuantity:
		err = parseQuantity(key, s, &op)
	case TypeReference:
		op.Reference, err = parseReference(key, param, targetType, op.Raw)
	case TypeURI:
		op.URI = op.Raw
	case TypeComposite:
		err = parseComposite(key, param, s, &op)
	}
	return op, err
}

// parseToken reads [system]|[code] or code; with :text the value is text
// (R4 search.html#token).
func parseToken(key string, mod Modifier, s string, op *Operand) error {
	if mod == ModifierText {
		op.String = StringValue{Norm: Normalize(op.Raw), Exact: op.Raw}
		return nil
	}
	parts := splitEscaped(s, '|')
	switch len(parts) {
	case 1:
		op.Token.Code = op.Raw
	case 2:
		op.HasSystem = true
		op.Token.System, op.Token.Code = unescape(parts[0]), unescape(parts[1])
		if op.Token.System == "" && op.Token.Code == "" {
			return invalid(key, "token %q has neither system nor code", op.Raw)
		}
	default:
		return invalid(key, "token %q has more than one unescaped |", op.Raw)
	}
	return nil
}

// parseQuantity reads [prefix]number[|system|code] (R4 search.html#quantity).
func parseQuantity(key, s string, op *Operand) error {
	parts := splitEscaped(s, '|')
	if len(parts) != 1 && len(parts) != 3 {
		return invalid(key, "quantity %q wants number or number|system|code", op.Raw)
	}
	prefix, num, err := cutPrefix(key, unescape(parts[0]))
	if err != nil {
		return err
	}
	op.Prefix = prefix
	if op.Quantity.NumberValue, err = ParseNumber(num); err != nil {
		return invalid(key, "invalid number %q", num)
	}
	if len(parts) == 3 {
		op.Quantity.System, op.Quantity.Code = unescape(parts[1]), unescape(parts[2])
		canonicalize(&op.Quantity)
	}
	return nil
}

// parseReference reads id, Type/id, an absolute URL or a canonical
// (R4 search.html#reference). With a :Type modifier (targetType) a plain id
// gets that type, and a Type/id must agree with it.
func parseReference(key string, param *Param, targetType, v string) (ReferenceValue, error) {
	if strings.Contains(v, "://") || strings.HasPrefix(v, "urn:") {
		r, _ := ParseReference(v)
		return r, nil
	}
	if !strings.Contains(v, "/") {
		if !fhir.ValidID(v) {
			return ReferenceValue{}, invalid(key, "invalid id %q", v)
		}
		return ReferenceValue{Type: targetType, ID: v}, nil
	}
	r, ok := ParseReference(v)
	if !ok {
		return r, invalid(key, "invalid reference %q: want id, Type/id or an absolute URL", v)
	}
	if targetType != "" && r.Type != targetType {
		return r, invalid(key, "reference %q is not a %s", v, targetType)
	}
	if !param.HasTarget(r.Type) {
		return r, invalid(key, "%s is not a target type of %s", r.Type, param.Code)
	}
	return r, nil
}

// parseComposite reads the $-separated component values (R4
// search.html#composite).
func parseComposite(key string, param *Param, s string, op *Operand) error {
	parts := splitEscaped(s, '$')
	if len(parts) != len(param.Components) {
		return invalid(key, "composite %q wants %d $-separated values", op.Raw, len(param.Components))
	}
	for i, c := range param.Components {
		part, err := parseOperand(key, c.Param, ModifierNone, "", parts[i])
		if err != nil {
			return err
		}
		op.Parts = append(op.Parts, part)
	}
	return nil
}

var prefixes = map[Prefix]bool{PrefixEq: true, PrefixNe: true, PrefixGt: true, PrefixLt: true,
	PrefixGe: true, PrefixLe: true, PrefixSa: true, PrefixEb: true, PrefixAp: true}

// cutPrefix splits a number, date or quantity value into its prefix (eq
// when none) and the rest (R4 search.html#prefix).
func cutPrefix(key, s string) (Prefix, string, error) {
	if len(s) >= 2 && isLetter(s[0]) && isLetter(s[1]) {
		p := Prefix(s[:2])
		if !prefixes[p] {
			return "", "", invalid(key, "unknown prefix %q", s[:2])
		}
		return p, s[2:], nil
	}
	return PrefixEq, s, nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// splitEscaped splits s at each sep not escaped by a backslash; escapes
// stay in the parts (R4 search.html#escaping).
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescape removes the backslash of \, \$ \| and \\.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
