package search

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// UCUMSystem is the code system of UCUM units (R4 search.html#quantity).
const UCUMSystem = "http://unitsofmeasure.org"

// ucumAtoms are the UCUM base and derived units fhirgate canonicalizes,
// each with its factor to the canonical atom and whether it takes metric
// prefixes (UCUM 4.2, "The Unified Code for Units of Measure"). Time units
// convert to seconds, so "1 h" and "60 min" compare equal; the other atoms
// are their own canonical unit.
var ucumAtoms = map[string]struct {
	canon  string
	factor float64
	metric bool
}{
	"g": {"g", 1, true}, "m": {"m", 1, true}, "L": {"L", 1, true}, "l": {"L", 1, true},
	"s": {"s", 1, true}, "mol": {"mol", 1, true}, "eq": {"eq", 1, true}, "Pa": {"Pa", 1, true},
	"Hz": {"Hz", 1, true}, "J": {"J", 1, true}, "W": {"W", 1, true}, "V": {"V", 1, true},
	"A": {"A", 1, true}, "K": {"K", 1, true}, "cd": {"cd", 1, true}, "kat": {"kat", 1, true},
	"U": {"U", 1, true}, "[iU]": {"[iU]", 1, true}, "[IU]": {"[iU]", 1, true},
	"m[Hg]": {"m[Hg]", 1, true}, "m[H2O]": {"m[H2O]", 1, true}, "bar": {"bar", 1, true},
	"min": {"s", 60, false}, "h": {"s", 3600, false}, "d": {"s", 86400, false},
	"wk": {"s", 604800, false}, "mo": {"s", 2629800, false}, "a": {"s", 31557600, false},
	"%": {"1", 0.01, false}, "1": {"1", 1, false},
}

// ucumPrefixes are the metric prefixes, longest first where one is a
// prefix of another ("da" before "d").
var ucumPrefixes = []struct {
	p string
	f float64
}{
	{"da", 1e1}, {"Y", 1e24}, {"Z", 1e21}, {"E", 1e18}, {"P", 1e15}, {"T", 1e12}, {"G", 1e9}, {"M", 1e6},
	{"k", 1e3}, {"h", 1e2}, {"d", 1e-1}, {"c", 1e-2}, {"m", 1e-3}, {"u", 1e-6}, {"n", 1e-9}, {"p", 1e-12},
	{"f", 1e-15}, {"a", 1e-18}, {"z", 1e-21}, {"y", 1e-24},
}

// CanonicalUnit converts a UCUM unit code to its canonical form and the
// factor that converts a value into it: "mg/dL" is 0.01 "L-1.g", "h" is
// 3600 "s". Annotations ({cells}) count as 1. ok is false for units
// outside the subset above (the value is then compared as given).
func CanonicalUnit(code string) (factor float64, canon string, ok bool) {
	if code == "" || len(code) > 64 {
		return 0, "", false
	}
	exps := map[string]int{}
	factor = 1
	sign := 1
	i := 0
	if code[0] == '/' {
		sign, i = -1, 1
	}
	for i <= len(code) {
		j := i
		for j < len(code) && code[j] != '.' && code[j] != '/' {
			if code[j] == '[' || code[j] == '{' {
				k := strings.IndexByte(code[j:], map[byte]byte{'[': ']', '{': '}'}[code[j]])
				if k < 0 {
					return 0, "", false
				}
				j += k
			}
			j++
		}
		f, atom, exp, ok := ucumComponent(code[i:j])
		if !ok {
			return 0, "", false
		}
		factor *= math.Pow(f, float64(sign*exp))
		if atom != "1" {
			exps[atom] += sign * exp
		}
		if j >= len(code) {
			break
		}
		sign = 1
		if code[j] == '/' {
			sign = -1
		}
		i = j + 1
	}
	return factor, renderUnit(exps), true
}

// ucumComponent reads one component: an optional annotation, a number
// (10*3, 10^3, 1000), or a prefixed atom with an integer exponent.
func ucumComponent(c string) (factor float64, atom string, exp int, ok bool) {
	if c == "" { // "mg/" or "g."
		return 0, "", 0, false
	}
	if i := strings.IndexByte(c, '{'); i >= 0 { // annotations are unity
		j := strings.IndexByte(c, '}')
		c = c[:i] + c[j+1:]
	}
	if c == "" {
		return 1, "1", 1, true
	}
	if base, pow, found := strings.Cut(strings.Replace(c, "^", "*", 1), "*"); found {
		b, err1 := strconv.Atoi(base)
		p, err2 := strconv.Atoi(pow)
		return math.Pow(float64(b), float64(p)), "1", 1, err1 == nil && err2 == nil
	}
	if n, err := strconv.Atoi(c); err == nil && n > 0 {
		return float64(n), "1", 1, true
	}
	exp = 1
	if k := strings.IndexAny(c, "-+0123456789"); k > 0 && c[k-1] != '[' && !strings.Contains(c[k:], "]") {
		e, err := strconv.Atoi(c[k:])
		if err != nil {
			return 0, "", 0, false
		}
		c, exp = c[:k], e
	}
	if a, ok := ucumAtoms[c]; ok {
		return a.factor, a.canon, exp, true
	}
	for _, p := range ucumPrefixes {
		if rest, found := strings.CutPrefix(c, p.p); found {
			if a, ok := ucumAtoms[rest]; ok && a.metric {
				return p.f * a.factor, a.canon, exp, true
			}
		}
	}
	return 0, "", 0, false
}

// renderUnit writes atoms sorted, with exponents other than 1: "L-1.g".
func renderUnit(exps map[string]int) string {
	atoms := make([]string, 0, len(exps))
	for a, e := range exps {
		if e != 0 {
			atoms = append(atoms, a)
		}
	}
	if len(atoms) == 0 {
		return "1"
	}
	slices.Sort(atoms)
	var b strings.Builder
	for i, a := range atoms {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(a)
		if e := exps[a]; e != 1 {
			b.WriteString(strconv.Itoa(e))
		}
	}
	return b.String()
}

// canonicalize fills q's canonical fields when its unit is UCUM and in the
// supported subset (R4 search.html#quantity: servers SHOULD compare
// quantities by canonical units).
func canonicalize(q *QuantityValue) {
	if q.System != UCUMSystem || q.Code == "" {
		return
	}
	f, canon, ok := CanonicalUnit(q.Code)
	if !ok || f <= 0 || math.IsInf(f, 0) {
		return
	}
	q.CanonicalCode = canon
	q.Canonical = NumberValue{Value: q.Value * f, Low: q.Low * f, High: q.High * f}
}
