package smart

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseScope checks that the parser never panics and that whatever it
// accepts renders to a canonical form that parses back to the same scope.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"system/*.read", "system/Patient.rs", "system/*.cruds", "user/Observation.write",
		"system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"system/Observation.rs?code=a%26b&status=final", "launch", "system/Patient.dus", "system/X.r?%zz=1",
		"system/Observation.rs?a=%2B%20", "system/*.*", "patient/Patient.c?name=x=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		rendered := sc.String()
		back, err := ParseScope(rendered)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", rendered, s, err)
		}
		if !reflect.DeepEqual(back, sc) {
			t.Fatalf("round trip of %q: %+v != %+v", s, back, sc)
		}
		if back.String() != rendered {
			t.Fatalf("canonical form not stable: %q then %q", rendered, back.String())
		}
		if strings.ContainsAny(rendered, " \t\n\"\\") {
			t.Fatalf("canonical form %q leaves the scope-token characters", rendered)
		}
	})
}

// FuzzParseScopes checks the list parser and that negotiation against
// itself is idempotent and never widens access.
func FuzzParseScopes(f *testing.F) {
	f.Add("system/*.read system/Patient.rs", "system/*.rs")
	f.Add("system/Observation.rs?category=lab system/*.c", "system/*.cruds?category=lab")
	f.Add("system/*.* user/Patient.read", "system/Patient.write")
	f.Fuzz(func(t *testing.T, req, ceil string) {
		r, err := ParseScopes(req)
		if err != nil {
			return
		}
		c, err := ParseScopes(ceil)
		if err != nil {
			return
		}
		g := r.Intersect(c)
		if again := g.Intersect(c); again.String() != g.String() {
			t.Fatalf("Intersect not idempotent: %q then %q", g, again)
		}
		back, err := ParseScopes(g.String())
		if err != nil {
			t.Fatalf("granted %q does not parse: %v", g, err)
		}
		if back.String() != g.String() {
			t.Fatalf("granted %q re-renders as %q", g, back)
		}
		for _, typ := range []string{"Patient", "Observation"} {
			for bit := Permission(1); bit <= PermSearch; bit <<= 1 {
				if g.Allows(typ, bit) && !(r.Allows(typ, bit) && c.Allows(typ, bit)) {
					t.Fatalf("granted %q allows %s.%s beyond request %q or ceiling %q", g, typ, bit, r, c)
				}
			}
		}
	})
}
