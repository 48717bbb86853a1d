package match

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/fhirgate/fhirgate/internal/search"
)

// The conditions below are the Go forms of the SQL conditions of
// internal/sqlstore/search_compile.go, column for column: what a value
// asks of one index row (search.html#ptypes). Their arguments are computed
// once, at Compile.

// value is one compiled value of a clause; the fields of its parameter's
// type are set.
type value struct {
	str      search.StringValue
	prefix   prefix // string and token :text starts-with, uri :below
	token    tokenArgs
	date     dateArgs
	number   numberArgs
	quantity quantityArgs
	ref      search.ReferenceValue
	uri      string // uri; for a composite part, the reference key too
	// parts are the components of a composite value; partType is the
	// type of a part.
	parts    []value
	partType search.Type
}

// prefix is a starts-with test written as the SQL writes it: the key
// range [p, successor(p)), in bytes (BINARY on SQLite, COLLATE "C" on
// PostgreSQL). An empty p matches everything.
type prefix struct {
	p, next string
	all     bool
	bounded bool // next exists
}

func newPrefix(p string) prefix {
	if p == "" {
		return prefix{all: true}
	}
	next, ok := successor(p)
	return prefix{p: p, next: next, bounded: ok}
}

func (x *prefix) match(s string) bool {
	return x.all || (s >= x.p && (!x.bounded || s < x.next))
}

// successor returns the smallest string greater than every string that
// starts with p: p with its last rune incremented, dropping trailing runes
// that cannot be; ok is false when there is none.
func successor(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r == utf8.RuneError && size <= 1 {
			continue
		}
		for r++; r <= utf8.MaxRune; r++ {
			if utf8.ValidRune(r) {
				return p + string(r), true
			}
		}
	}
	return "", false
}

// matchString: default starts-with on the normalized form, :exact equal
// in both forms, :contains anywhere in the normalized form
// (search.html#string).
func (v *value) matchString(mod search.Modifier, r *search.StringValue) bool {
	switch mod {
	case search.ModifierExact:
		return r.Norm == v.str.Norm && r.Exact == v.str.Exact
	case search.ModifierContains:
		return strings.Contains(r.Norm, v.str.Norm)
	}
	return v.prefix.match(r.Norm)
}

// tokenArgs: code alone, system|code, |code (no system) and system| (any
// code), search.html#token.
type tokenArgs struct {
	system, code string
	hasSystem    bool
}

func tokenArgsOf(v *search.Operand) tokenArgs {
	return tokenArgs{system: v.Token.System, code: v.Token.Code, hasSystem: v.HasSystem}
}

func (t *tokenArgs) match(system, code string) bool {
	switch {
	case !t.hasSystem:
		return code == t.code
	case t.code == "":
		return system == t.system
	}
	return code == t.code && system == t.system
}

// dateArgs compare a row's range [low, high] with the value's [pl, ph] as
// search.html#prefix defines each prefix for ranges; ap uses [lo, hi],
// the value widened. The float forms serve composite rows, whose columns
// are floating point.
type dateArgs struct {
	prefix             search.Prefix
	pl, ph, lo, hi     int64
	fpl, fph, flo, fhi float64
}

func (c *compiler) dateArgs(p search.Prefix, d search.DateRange) dateArgs {
	a := dateArgs{prefix: p, pl: d.Low, ph: d.High}
	if p == search.PrefixAp {
		a.lo, a.hi = approximate(c.now, d.Low, d.High)
		c.usedNow = true
	}
	a.fpl, a.fph, a.flo, a.fhi = float64(a.pl), float64(a.ph), float64(a.lo), float64(a.hi)
	return a
}

func (a *dateArgs) match(low, high int64) bool {
	return dateMatch(a.prefix, low, high, a.pl, a.ph, a.lo, a.hi)
}

func (a *dateArgs) matchFloat(low, high float64) bool {
	return dateMatch(a.prefix, low, high, a.fpl, a.fph, a.flo, a.fhi)
}

func dateMatch[T int64 | float64](p search.Prefix, low, high, pl, ph, lo, hi T) bool {
	switch p {
	case search.PrefixNe:
		return !(low >= pl && high <= ph)
	case search.PrefixGt:
		return high > ph
	case search.PrefixLt:
		return low < pl
	case search.PrefixGe:
		// above the value, or within it
		return high >= pl && (high > ph || low >= pl)
	case search.PrefixLe:
		return low <= ph && (low < pl || high <= ph)
	case search.PrefixSa:
		return low > ph
	case search.PrefixEb:
		return high < pl
	case search.PrefixAp:
		return low <= hi && high >= lo
	}
	// eq: the row's range lies within the value's
	return low >= pl && low <= ph && high <= ph
}

// approximate widens [pl, ph] by a tenth of its distance from now, the
// "approximately" of search.html#prefix, saturating at the open ends.
func approximate(now, pl, ph int64) (int64, int64) {
	mid := pl/2 + ph/2
	gap := now - mid
	if gap < 0 {
		gap = -gap
	}
	gap /= 10
	lo, hi := pl-gap, ph+gap
	if lo > pl {
		lo = search.MinDate
	}
	if hi < ph {
		hi = search.MaxDate
	}
	return lo, hi
}

// numberArgs: eq is within the precision range of the value (100 is
// [99.5, 100.5)); the other prefixes compare with the value itself; ap
// allows a tenth of the value or its precision, whichever is more
// (search.html#number).
type numberArgs struct {
	prefix             search.Prefix
	value, low, high   float64
	approxLo, approxHi float64
}

func numberArgsOf(p search.Prefix, n search.NumberValue) numberArgs {
	a := numberArgs{prefix: p, value: n.Value, low: n.Low, high: n.High}
	if p == search.PrefixAp {
		d := math.Max(math.Abs(n.Value)/10, (n.High-n.Low)/2)
		a.approxLo, a.approxHi = n.Value-d, n.Value+d
	}
	return a
}

func (a *numberArgs) match(x float64) bool {
	switch a.prefix {
	case search.PrefixNe:
		return !(x >= a.low && x < a.high)
	case search.PrefixGt, search.PrefixSa:
		return x > a.value
	case search.PrefixLt, search.PrefixEb:
		return x < a.value
	case search.PrefixGe:
		return x >= a.value
	case search.PrefixLe:
		return x <= a.value
	case search.PrefixAp:
		return x >= a.approxLo && x <= a.approxHi
	}
	return x >= a.low && x < a.high
}

// quantityArgs: the number, plus the unit: system|code must match, in
// canonical UCUM units when the value has them; a code alone matches the
// coded or the human unit (search.html#quantity).
type quantityArgs struct {
	num          numberArgs
	system, code string
	canon        numberArgs
	canonCode    string
}

func quantityArgsOf(v *search.Operand) quantityArgs {
	q := v.Quantity
	return quantityArgs{num: numberArgsOf(v.Prefix, q.NumberValue), system: q.System, code: q.Code,
		canon: numberArgsOf(v.Prefix, q.Canonical), canonCode: q.CanonicalCode}
}

// quantityCols are the columns of a quantity row (or composite cell).
type quantityCols struct {
	value              float64
	system, code, unit string
	cvalue             float64
	ccode              string
}

func (a *quantityArgs) match(q *quantityCols) bool {
	num := a.num.match(q.value)
	switch {
	case a.code == "" && a.system == "":
		return num
	case a.system == "":
		return num && (q.code == a.code || q.unit == a.code)
	}
	if num && q.system == a.system && q.code == a.code {
		return true
	}
	return a.canonCode != "" && a.canon.match(q.cvalue) && q.ccode == a.canonCode
}

func quantityColsOf(q *search.QuantityValue) quantityCols {
	return quantityCols{value: search.Finite(q.Value, q.Low, q.High), system: q.System, code: q.Code, unit: q.Unit,
		cvalue: search.Finite(q.Canonical.Value, q.Canonical.Low, q.Canonical.High), ccode: q.CanonicalCode}
}

// matchRef: an absolute URL matches the URL, an id any target type (the
// :Type modifier's is already in the value), Type/id both
// (search.html#reference). The index keeps an absolute reference by its
// URL alone.
func (v *value) matchRef(r *search.ReferenceValue) bool {
	typ, id := r.Type, r.ID
	if r.URL != "" {
		typ, id = "", ""
	}
	switch {
	case v.ref.URL != "":
		return r.URL == v.ref.URL
	case v.ref.Type == "":
		return id == v.ref.ID
	}
	return id == v.ref.ID && typ == v.ref.Type
}

// matchURI: equality, :below (the value is a prefix of the uri) and
// :above (the uri is a prefix of the value), search.html#uri.
func (v *value) matchURI(mod search.Modifier, u string) bool {
	switch mod {
	case search.ModifierBelow:
		return v.prefix.match(u)
	case search.ModifierAbove:
		return u <= v.uri && strings.HasPrefix(v.uri, u)
	}
	return u == v.uri
}

// matchCell compares one part of a composite value with a cell.
func (v *value) matchCell(c *search.CompositeCell) bool {
	switch v.partType {
	case search.TypeToken:
		return v.token.match(c.System, c.Code)
	case search.TypeString:
		return v.prefix.match(c.Code)
	case search.TypeReference, search.TypeURI:
		return c.Code == v.uri
	case search.TypeDate:
		return v.date.matchFloat(c.Low, c.High)
	case search.TypeNumber:
		return v.number.match(c.Low)
	case search.TypeQuantity:
		// The composite table has no unit column: the code stands in.
		return v.quantity.match(&quantityCols{value: c.Low, system: c.System, code: c.Code, unit: c.Code, cvalue: c.CanonicalValue, ccode: c.CanonicalCode})
	}
	return false
}

// matchComposite: every part on the same row, that is the same element of
// the resource (search.html#composite).
func (v *value) matchComposite(r *search.CompositeRow) bool {
	for i := range v.parts {
		var c search.CompositeCell
		if i < len(r.Parts) {
			c = search.CellOf(&r.Parts[i])
		}
		if !v.parts[i].matchCell(&c) {
			return false
		}
	}
	return true
}
