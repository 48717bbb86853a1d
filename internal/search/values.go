package search

// The value types below are shared by index rows (what a resource holds) and
// query values (what a search asks for), already normalized the way the SQL
// layer compares them (R4 search.html#ptypes).

// StringValue is a string parameter value. Norm is the form string search
// compares by default and with :contains (lower case, accents removed);
// Exact is the original, for :exact (R4 search.html#string).
type StringValue struct {
	Norm  string
	Exact string
}

// TokenValue is one coded value: a Coding, an Identifier, a ContactPoint, a
// code, a boolean or an id. Text holds the normalized display or text that
// :text searches; a row with an empty Code carries only a
// CodeableConcept.text (R4 search.html#token).
type TokenValue struct {
	System string
	Code   string
	Text   string
}

// DateRange is the closed interval [Low, High] a date covers, in UTC
// microseconds since 1970: a partial date covers its whole precision
// ("2024-03" is March 2024), a Period covers start to end, with MinDate or
// MaxDate for an open end (R4 search.html#date).
type DateRange struct {
	Low  int64
	High int64
}

// Open ends of a DateRange (a Period without start or end).
const (
	MinDate int64 = -1 << 63
	MaxDate int64 = 1<<63 - 1
)

// NumberValue is a decimal and the range its precision implies: 100 is
// [99.5, 100.5), 100.00 is [99.995, 100.005) (R4 search.html#number). A
// Range element has only Low and High, with Value their midpoint.
type NumberValue struct {
	Value float64
	Low   float64
	High  float64
}

// QuantityValue is a Quantity (or Age, Duration, Money, a Range's bounds):
// its number and units. System and Code are the coded unit; Unit is the
// human-readable unit. For a UCUM unit that CanonicalUnit knows, Canonical
// is the number converted to CanonicalCode ("5 mg" is 0.005 "g"), so that
// the SQL layer can compare quantities given in different units (R4
// search.html#quantity); CanonicalCode is empty otherwise.
type QuantityValue struct {
	NumberValue
	System        string
	Code          string
	Unit          string
	Canonical     NumberValue
	CanonicalCode string
}

// ReferenceValue is a reference: Type and ID for a relative (or parseable
// absolute) literal reference, URL for an absolute one or a canonical
// (R4 search.html#reference). Local "#id" references are not indexed.
type ReferenceValue struct {
	Type string
	ID   string
	URL  string
}

// Value is one component of a composite: exactly the field of Type is set.
type Value struct {
	Type      Type
	String    StringValue
	Token     TokenValue
	Date      DateRange
	Number    NumberValue
	Quantity  QuantityValue
	Reference ReferenceValue
	URI       string
}

// StringRow is an index row of a string parameter. Param is the
// parameter's code; rows of every type are keyed by it, so that each SQL
// index table is (param, value, resource) shaped.
type StringRow struct {
	Param string
	StringValue
}

// TokenRow is an index row of a token parameter.
type TokenRow struct {
	Param string
	TokenValue
}

// DateRow is an index row of a date parameter.
type DateRow struct {
	Param string
	DateRange
}

// NumberRow is an index row of a number parameter.
type NumberRow struct {
	Param string
	NumberValue
}

// QuantityRow is an index row of a quantity parameter.
type QuantityRow struct {
	Param string
	QuantityValue
}

// ReferenceRow is an index row of a reference parameter.
type ReferenceRow struct {
	Param string
	ReferenceValue
}

// URIRow is an index row of a uri parameter.
type URIRow struct {
	Param string
	URI   string
}

// CompositeRow is an index row of a composite parameter: one combination
// of component values taken from the same element (R4
// search.html#composite), in the order of Param's Components.
type CompositeRow struct {
	Param string
	Parts []Value
}

// Rows are the index rows of one resource, grouped by parameter type.
type Rows struct {
	Strings    []StringRow
	Tokens     []TokenRow
	Dates      []DateRow
	Numbers    []NumberRow
	Quantities []QuantityRow
	References []ReferenceRow
	URIs       []URIRow
	Composites []CompositeRow
}

// Reset empties r, keeping its storage for reuse.
func (r *Rows) Reset() {
	r.Strings = r.Strings[:0]
	r.Tokens = r.Tokens[:0]
	r.Dates = r.Dates[:0]
	r.Numbers = r.Numbers[:0]
	r.Quantities = r.Quantities[:0]
	r.References = r.References[:0]
	r.URIs = r.URIs[:0]
	r.Composites = r.Composites[:0]
}

// Len is the total number of rows.
func (r *Rows) Len() int {
	return len(r.Strings) + len(r.Tokens) + len(r.Dates) + len(r.Numbers) + len(r.Quantities) +
		len(r.References) + len(r.URIs) + len(r.Composites)
}
