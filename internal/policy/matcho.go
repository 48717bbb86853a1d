package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// matcher is a compiled matcho pattern; value is a JSON-like value of the
// request object (map[string]any, []any, string, float64, bool or nil).
type matcher interface {
	match(value any) bool
}

// compileError locates a pattern problem for a 422 answer.
type compileError struct {
	path string
	msg  string
}

func (e *compileError) Error() string { return e.path + ": " + e.msg }

// compile turns a decoded JSON pattern into a matcher; path names its place
// ("matcho.params.resource/type") for errors.
func compile(path string, p any) (matcher, error) {
	switch v := p.(type) {
	case nil:
		return isNil{}, nil
	case string:
		return compileString(path, v)
	case json.Number:
		return equal{value: v}, nil
	case bool:
		return equal{value: v}, nil
	case []any:
		return compileArray(path, v)
	case map[string]any:
		return compileObject(path, v)
	}
	return nil, &compileError{path, fmt.Sprintf("unsupported pattern of type %T", p)}
}

func compileString(path, s string) (matcher, error) {
	switch s {
	case "present?":
		return present{}, nil
	case "nil?":
		return isNil{}, nil
	case "not-blank?":
		return notBlank{}, nil
	}
	if strings.HasPrefix(s, "#") {
		re, err := regexp.Compile(s[1:])
		if err != nil {
			return nil, &compileError{path, fmt.Sprintf("bad regular expression %q: %v", s[1:], err)}
		}
		return regex{re}, nil
	}
	if strings.HasPrefix(s, ".") && len(s) > 1 && !strings.ContainsAny(s, " /") {
		return nil, &compileError{path, fmt.Sprintf("path references such as %q are not supported", s)}
	}
	return equal{value: s}, nil
}

func compileArray(path string, items []any) (matcher, error) {
	m := elementwise{}
	for i, item := range items {
		c, err := compile(fmt.Sprintf("%s[%d]", path, i), item)
		if err != nil {
			return nil, err
		}
		m.items = append(m.items, c)
	}
	return m, nil
}

func compileObject(path string, obj map[string]any) (matcher, error) {
	for k := range obj {
		if strings.HasPrefix(k, "$") {
			if len(obj) != 1 {
				return nil, &compileError{path, fmt.Sprintf("operator %s must be the only key of its object", k)}
			}
			return compileOperator(path+"."+k, k, obj[k])
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := object{}
	for _, k := range keys {
		c, err := compile(path+"."+k, obj[k])
		if err != nil {
			return nil, err
		}
		m.fields = append(m.fields, field{name: k, m: c})
	}
	return m, nil
}

func compileOperator(path, op string, arg any) (matcher, error) {
	switch op {
	case "$enum":
		list, ok := arg.([]any)
		if !ok || len(list) == 0 {
			return nil, &compileError{path, "$enum needs a non-empty array of values"}
		}
		return enum{values: list}, nil
	case "$one-of":
		list, ok := arg.([]any)
		if !ok || len(list) == 0 {
			return nil, &compileError{path, "$one-of needs a non-empty array of patterns"}
		}
		m := oneOf{}
		for i, p := range list {
			c, err := compile(fmt.Sprintf("%s[%d]", path, i), p)
			if err != nil {
				return nil, err
			}
			m.alts = append(m.alts, c)
		}
		return m, nil
	case "$not":
		c, err := compile(path, arg)
		return not{c}, err
	case "$contains":
		c, err := compile(path, arg)
		return contains{c}, err
	}
	return nil, &compileError{path, fmt.Sprintf("operator %s is not supported (supported: $enum, $one-of, $not, $contains)", op)}
}

type isNil struct{}

func (isNil) match(v any) bool { return v == nil }

type present struct{}

func (present) match(v any) bool { return v != nil }

type notBlank struct{}

func (notBlank) match(v any) bool {
	s, ok := v.(string)
	return ok && strings.TrimSpace(s) != ""
}

type regex struct{ re *regexp.Regexp }

func (r regex) match(v any) bool {
	s, ok := v.(string)
	return ok && r.re.MatchString(s)
}

// equal compares with a string, a number (json.Number) or a bool; values
// of different JSON types never match, so 10 does not match "10".
type equal struct{ value any }

func (e equal) match(v any) bool {
	switch x := v.(type) {
	case string, json.Number, bool:
		return e.value == x
	}
	return false
}

// elementwise matches an array value position by position; the value may
// be longer than the pattern.
type elementwise struct{ items []matcher }

func (e elementwise) match(v any) bool {
	arr, ok := v.([]any)
	if !ok || len(arr) < len(e.items) {
		return false
	}
	for i, m := range e.items {
		if !m.match(arr[i]) {
			return false
		}
	}
	return true
}

type field struct {
	name string
	m    matcher
}

// object matches a map value: every pattern key must match (a missing key
// reads as nil); keys the pattern does not name are ignored.
type object struct{ fields []field }

func (o object) match(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, f := range o.fields {
		if !f.m.match(m[f.name]) {
			return false
		}
	}
	return true
}

type enum struct{ values []any }

func (e enum) match(v any) bool {
	for _, want := range e.values {
		if (equal{value: want}).match(v) {
			return true
		}
	}
	return false
}

type oneOf struct{ alts []matcher }

func (o oneOf) match(v any) bool {
	for _, m := range o.alts {
		if m.match(v) {
			return true
		}
	}
	return false
}

type not struct{ m matcher }

func (n not) match(v any) bool { return !n.m.match(v) }

type contains struct{ m matcher }

func (c contains) match(v any) bool {
	arr, ok := v.([]any)
	if !ok {
		return false
	}
	for _, item := range arr {
		if c.m.match(item) {
			return true
		}
	}
	return false
}
