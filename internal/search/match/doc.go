// Package match decides whether one resource matches FHIR search queries
// without the database: the _typeFilter of a Bulk Data export and SMART
// query-restricted scopes (scopes-and-launch-context.html, "Finer-grained
// resource constraints") must be decided on the exact version exported or
// read, while the SQL search index describes only current versions.
//
// A Matcher is an OR of queries, each an AND of its parameters (repeats
// are AND, commas OR), as R4 search.html defines them and as Bulk Data
// _typeFilter and SMART scopes combine them; like the search engine, it
// reads the lower and upper bounds of one date parameter
// (date=ge2024-03-01&date=lt2024-03-08) as one interval that a single date
// must fall in. Compile parses the queries
// strictly with search.ParseQuery and turns each value into a predicate
// on the index rows that search.Extractor computes for a resource: the
// same rows the SQL index holds, compared the same way
// internal/sqlstore/search_compile.go compares them, so that a resource
// matches here exactly when a search would return it. The differential
// test holds the two to that on both database backends.
//
// Supported: every parameter type on the resource itself. string
// (starts-with on the normalized form, :exact, :contains); token (code,
// system|code, |code, system|, :not, :text); date with every prefix (ap
// widens by a tenth of the distance from now, as the SQL does); number
// and quantity (with canonical UCUM units); reference (id, Type/id,
// absolute URL, :Type); uri (:below, :above); composite; :missing on all;
// and _id, _lastUpdated (from meta.lastUpdated), _tag, _profile,
// _security and _source.
//
// Refused with a 400 *fhir.Error naming the parameter, because one
// resource cannot decide them or because a filter must never be silently
// widened: chained parameters and _has (they depend on other resources),
// result parameters (_count, _sort, _include, _revinclude, _summary,
// _elements, _total, paging), special parameters (near), and, through the
// strict parse, unknown and unsupported ones (_text, _content, _filter,
// _list, _type, ...).
//
// Matching decodes the body once and extracts its rows with an Extractor
// from a pool; a Matcher is safe for concurrent use.
package match
