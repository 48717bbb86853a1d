package search

// Query is a parsed type-level search (R4 search.html): a conjunction of
// clauses plus the result controls. ParseQuery builds it; phase 2 compiles
// it to SQL.
type Query struct {
	// Type is the resource type searched.
	Type string
	// Where are the criteria; all must hold (repeating a parameter is AND).
	Where []Clause
	// Sort are the _sort keys, most significant first.
	Sort []SortKey
	// Count is _count, the page size; HasCount is false when absent.
	Count    int
	HasCount bool
	// Offset (_offset) and Cursor (_cursor) are the server's paging
	// parameters, carried in its next/previous links.
	Offset int
	Cursor string
	// Total is _total; empty when absent.
	Total Total
	// Summary is _summary; empty when absent.
	Summary Summary
	// Elements is _elements: the top-level element names to return.
	Elements []string
	// Includes and RevIncludes are _include and _revinclude.
	Includes    []Include
	RevIncludes []Include
}

// Clause is one occurrence of a search parameter: its values are
// alternatives (a comma in the value is OR).
type Clause struct {
	// Name is the parameter as written, e.g. "subject:Patient.name:exact".
	Name string
	// Chain are the reference hops of a chained parameter (R4
	// search.html#chaining), e.g. subject:Patient for subject:Patient.name.
	Chain []Link
	// Has is the reverse chain of a _has parameter (R4 search.html#has);
	// when set, Param is nil and Has.Clause holds the criterion.
	Has *Has
	// Param is the parameter compared, on the resource type(s) the chain
	// ends at (the searched type without a chain).
	Param *Param
	// Types are the resource types Param is evaluated on: the searched
	// type, or the target types of the last hop.
	Types []string
	// Modifier is the parameter's modifier; for a reference parameter with
	// a resource type modifier (subject:Patient) it is ModifierType and
	// TargetType holds the type.
	Modifier   Modifier
	TargetType string
	// Values are the alternatives.
	Values []Operand
}

// Link is one hop of a chain: a reference parameter and the resource types
// it is followed to (the :Type modifier, or the parameter's targets that
// have the next parameter).
type Link struct {
	Param *Param
	Types []string
}

// Has is a reverse chain: resources of Type whose reference parameter Ref
// points at the searched resource and that match Clause.
type Has struct {
	Type   string
	Ref    *Param
	Clause Clause
}

// Modifier is a search parameter modifier (R4 search.html#modifiers).
type Modifier string

// The modifiers fhirgate parses.
const (
	ModifierNone     Modifier = ""
	ModifierMissing  Modifier = "missing"
	ModifierExact    Modifier = "exact"
	ModifierContains Modifier = "contains"
	ModifierText     Modifier = "text"
	ModifierNot      Modifier = "not"
	ModifierAbove    Modifier = "above"
	ModifierBelow    Modifier = "below"
	ModifierType     Modifier = "[type]"
)

// Prefix is a comparison prefix of number, date and quantity values (R4
// search.html#prefix). A value without one gets PrefixEq.
type Prefix string

// The R4 prefixes.
const (
	PrefixEq Prefix = "eq"
	PrefixNe Prefix = "ne"
	PrefixGt Prefix = "gt"
	PrefixLt Prefix = "lt"
	PrefixGe Prefix = "ge"
	PrefixLe Prefix = "le"
	PrefixSa Prefix = "sa"
	PrefixEb Prefix = "eb"
	PrefixAp Prefix = "ap"
)

// Operand is one value of a clause, parsed by the parameter's type: the
// field for Type is set.
type Operand struct {
	// Raw is the value as written, escapes removed.
	Raw string
	// Type is the type of the parameter the value is for.
	Type Type
	// Missing is the value of :missing (true: the element is absent).
	Missing bool
	// Prefix applies to number, date and quantity.
	Prefix Prefix
	// String is a string value; with :text, a token value is a string.
	String StringValue
	// Token: Code alone matches any system; with HasSystem, System must
	// match too ("" meaning no system: "|code"), and an empty Code then
	// matches any code ("system|").
	Token     TokenValue
	HasSystem bool
	Date      DateRange
	Number    NumberValue
	// Quantity: System and Code are empty when not given; "5||mg" gives
	// Code only.
	Quantity  QuantityValue
	Reference ReferenceValue
	URI       string
	// Parts are the component values of a composite, in order.
	Parts []Operand
}

// SortKey is one _sort key.
type SortKey struct {
	Param      *Param
	Descending bool
}

// Total is _total (R4 search.html#total).
type Total string

// The _total values.
const (
	TotalNone     Total = "none"
	TotalEstimate Total = "estimate"
	TotalAccurate Total = "accurate"
)

// Summary is _summary (R4 search.html#summary).
type Summary string

// The _summary values.
const (
	SummaryTrue  Summary = "true"
	SummaryFalse Summary = "false"
	SummaryText  Summary = "text"
	SummaryData  Summary = "data"
	SummaryCount Summary = "count"
)

// Include is one _include or _revinclude (R4 search.html#include):
// resources of Source point through Param to resources of Target (any
// target type when empty). Param is nil for the wildcard Source:*, and
// Source is empty too for a bare "*" (every reference of every type).
type Include struct {
	Source  string
	Param   *Param
	Target  string
	Iterate bool
}

// Subsetted is the meta.tag a server adds to a resource it returns only in
// part (_elements, _summary), R4 search.html#elements.
const (
	SubsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	SubsettedCode   = "SUBSETTED"
)
