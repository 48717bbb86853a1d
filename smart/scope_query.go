package smart

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// QueryParam is one name=value pair of a scope's query restriction, decoded.
type QueryParam struct {
	Name  string
	Value string
}

// Query is the restriction of a v2 scope: resources must match every
// parameter, as in a FHIR search where parameters combine with AND. It is
// kept sorted and without duplicates so that equal restrictions compare
// equal.
type Query []QueryParam

// ParseQuery parses the text after "?" in a scope, e.g.
// "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory".
// Every pair needs a name and a value; names and values are percent-decoded.
func ParseQuery(raw string) (Query, error) {
	if raw == "" {
		return nil, fmt.Errorf("empty query restriction after ?")
	}
	var q Query
	for _, pair := range strings.Split(raw, "&") {
		name, value, ok := strings.Cut(pair, "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("query restriction %q is not name=value", pair)
		}
		n, err1 := url.QueryUnescape(name)
		v, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil || n == "" || v == "" {
			return nil, fmt.Errorf("query restriction %q has a bad percent-encoding", pair)
		}
		q = append(q, QueryParam{Name: n, Value: v})
	}
	return q.canonical(), nil
}

func (q Query) canonical() Query {
	sort.Slice(q, func(i, j int) bool {
		if q[i].Name != q[j].Name {
			return q[i].Name < q[j].Name
		}
		return q[i].Value < q[j].Value
	})
	out := q[:0]
	for i, p := range q {
		if i == 0 || p != q[i-1] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// And returns the conjunction of q and r: a resource must match both.
func (q Query) And(r Query) Query {
	if len(q) == 0 && len(r) == 0 {
		return nil
	}
	out := make(Query, 0, len(q)+len(r))
	out = append(out, q...)
	out = append(out, r...)
	return out.canonical()
}

// contains reports whether every parameter of r is in q, that is, whether
// q is at least as restrictive as r.
func (q Query) contains(r Query) bool {
	for _, p := range r {
		found := false
		for _, x := range q {
			if x == p {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Values returns the restriction as url.Values for a search engine.
func (q Query) Values() url.Values {
	v := make(url.Values, len(q))
	for _, p := range q {
		v[p.Name] = append(v[p.Name], p.Value)
	}
	return v
}

// String renders q as query text that ParseQuery reads back to q. Only the
// characters that would change the meaning (or leave the scope-token
// character set of RFC 6749 §3.3) are percent-encoded, so
// "code=http://loinc.org|4548-4" stays readable.
func (q Query) String() string {
	var b strings.Builder
	for i, p := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		escapeQueryPart(&b, p.Name, true)
		b.WriteByte('=')
		escapeQueryPart(&b, p.Value, false)
	}
	return b.String()
}

func escapeQueryPart(b *strings.Builder, s string, isName bool) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) || (isName && c == '=') {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

func needsEscape(c byte) bool {
	switch c {
	case '%', '&', '+', ';', '#', '"', '\\':
		return true
	}
	return c < 0x21 || c > 0x7e
}

func (q Query) equal(r Query) bool {
	if len(q) != len(r) {
		return false
	}
	for i := range q {
		if q[i] != r[i] {
			return false
		}
	}
	return true
}
