// Package policy evaluates Aidbox-style AccessPolicy resources: the
// out-of-band authorization that applies on top of SMART scopes. A request
// is allowed only when some policy allows it (default deny: with no policy,
// or none that matches, the answer is 403 whatever the token's scopes say).
// Scopes are checked separately, first (Aidbox order: scope check, then
// AccessPolicy).
//
// # AccessPolicy JSON
//
//	{"resourceType": "AccessPolicy", "id": "...", "description": "...",
//	 "engine": "allow" | "matcho" | "complex",
//	 "link": [{"resourceType": "Client", "id": "<client id>"}, ...],
//	 "matcho": {...}            // engine matcho
//	 "and": [rule, ...] | "or": [rule, ...]   // engine complex
//	}
//
// A policy without "link" applies to every client; with links, only to the
// linked Clients (User and Operation links are refused). A complex rule is
// an object with its own "engine" (allow, matcho or complex) and that
// engine's configuration; "and" and "or" cannot be combined on one level.
// Other Aidbox engines (sql, json-schema, *-rpc, ...) are refused with 422,
// as is configuration that belongs to another engine than the one named.
//
// # The request object
//
// matcho patterns are matched against this object, built from Request:
//
//	"request-method": the HTTP method in lower case ("get", "post", ...)
//	"uri":            Request.Path, or "/fhir[/Type][/id][/$operation]"
//	"params":         the query parameters (a string, or an array of
//	                  strings when repeated), plus "resource/type" and
//	                  "resource/id" when the request names them
//	"operation":      e.g. "$export" (absent when none)
//	"client":         {"id": "<client id>"}
//
// # Supported matcho subset
//
//   - An object pattern matches an object value whose every named key
//     matches (a missing key reads as null); other keys are ignored.
//   - A string matches an equal string. "#regex" matches a string the RE2
//     expression finds a match in (unanchored: use ^ and $ to anchor).
//     "present?" matches any non-null value, "nil?" a missing or null one,
//     "not-blank?" a string with a non-space character.
//   - Numbers and booleans match equal values of the same JSON type (query
//     parameters are strings: write "10", not 10); null matches missing.
//   - An array pattern matches an array value element by element (the value
//     may be longer).
//   - {"$enum": [v, ...]} matches a value equal to one of the values;
//     {"$one-of": [p, ...]} a value matching any pattern; {"$not": p} a
//     value not matching p; {"$contains": p} an array with an element
//     matching p.
//
// Not supported (refused at validation): ".path" references into the
// request, $every, $reference, $present-all, $length and other operators.
//
// Decisions are cached per policy set; Engine.Replace swaps the set
// atomically and drops the cache. Every decision writes one audit line
// (client id, decision, reason, interaction; query parameter names without
// their values).
package policy
