// Package fhirpath parses and evaluates the subset of FHIRPath (N1,
// http://hl7.org/fhirpath/N1/) that the FHIR R4 search parameter expressions
// use, over resources decoded from JSON.
//
// The subset: member navigation (with choice elements such as value[x]
// found by their typed JSON names, e.g. valueQuantity), the indexer [n],
// union `|`, the type operators `is` and `as`, the functions where(),
// exists(), empty(), not(), first(), last(), count(), hasValue(), ofType(),
// as(), is(), extension(url) and resolve(), the operators `=`, `!=`, `and`,
// `or`, string, number and boolean literals, and the variables %resource,
// %rootResource, %context and $this.
//
// resolve() does not load anything: it yields a stand-in for the referenced
// resource whose type is the reference's target type (from Reference.reference,
// or Reference.type), or the contained resource for a local "#id" reference.
// That is all that `resolve() is Patient`, the only use of resolve() in the
// R4 search parameters, needs (FHIR R4 search.html#table, fhirpath.html).
//
// Expressions are compiled once and are safe for concurrent use.
package fhirpath
