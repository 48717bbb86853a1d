// Package export implements the server side of FHIR Bulk Data Access
// $export (IG 2.0.0, hl7.org/fhir/uv/bulkdata/STU2/export.html): the
// kick-off at system, Patient and Group level, status polling, cancel,
// and file downloads, with a durable engine behind them. This comment is
// the server capability documentation the IG asks for (export.html
// "Server Capability Documentation").
//
// # Endpoints
//
//	GET|POST [base]/$export                    system level
//	GET|POST [base]/Patient/$export            all patients
//	GET|POST [base]/Group/[id]/$export         the Group's member Patients
//	GET|DELETE [base]/$export-status/[job]     status (the Content-Location)
//	GET [base]/$export-file/[job]/[file]       files (the manifest's urls)
//
// The CapabilityStatement instantiates
// http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data and lists
// the operations export, patient-export and group-export with their
// canonical OperationDefinitions.
//
// # Kick-off
//
// Accept: application/fhir+json and Prefer: respond-async are required
// (400 otherwise); Prefer: handling=lenient turns refusals of unsupported
// parameters and values into warnings in the manifest's error file. A POST
// takes a Parameters body (valueString, valueInstant, valueCode,
// valueReference). Success is 202 with an absolute Content-Location; every
// error is a 4xx/5xx OperationOutcome. A client may run three exports at
// once (--export-max-per-client); one more gets 429 with Retry-After.
//
// Parameters:
//
//   - _outputFormat: application/fhir+ndjson (default), application/ndjson
//     or ndjson; anything else is 400 whatever the handling.
//   - _since: a FHIR instant, not in the future. Resources whose last
//     version was written after it are exported; resources deleted after
//     it (and still deleted at transactionTime) are listed in the
//     manifest's deleted array, as NDJSON files (type Bundle) of
//     transaction Bundles with one DELETE entry each. Without _since the
//     manifest has no deleted array.
//   - _type: comma-separated and/or repeated resource types. An unknown
//     type, or at Patient and Group level a type outside the Patient
//     compartment, is 400 (lenient: left out with a warning). A type the
//     client may not read is 403. Without _type, the export holds every
//     type the client may read (all R4 types at system level, the Patient
//     compartment types otherwise); the others are left out silently.
//   - _elements: "element" or "Type.element", root elements only; the
//     resources keep resourceType, id, meta and their mandatory elements
//     and carry the SUBSETTED tag.
//   - patient: POST only, Patient and Group level only (400 otherwise), at
//     most 1000. An unknown patient, or at Group level a non-member, is 400
//     (lenient: left out with a warning).
//   - _typeFilter: "Type?query", repeated or comma-joined; queries of one
//     type are ORed. They are evaluated per resource by the in-memory
//     matcher (see Filters below); a server without one answers 400
//     (lenient: ignored with a warning). Chained parameters, _has and
//     result parameters (_include, _sort, _count, _elements, _summary,
//     ...) are 400 whatever the handling.
//   - includeAssociatedData: accepted, none of its values is supported:
//     Provenance is exported like any other type (every Provenance at
//     system level, those in the Patient compartment at Patient and Group
//     level, unless _type leaves Provenance out), and the error file says
//     so.
//   - Any other parameter (including the STU3 _until, organizeOutputBy
//     and allowPartialManifests) is 400 (lenient: ignored with a warning).
//
// # What is exported
//
// The export is a consistent snapshot at transactionTime: the version of
// each resource current at that instant, nothing written later, exactly
// as stored (no re-encoding, meta included; only _elements re-renders).
// Patient level holds every Patient and every resource in some Patient's
// compartment (R4 CompartmentDefinition patient: a compartment parameter
// of the resource references a Patient of this server); Group level the
// Group's active members (member.inactive excluded) as of
// transactionTime and their compartments. Membership is decided on the
// exported version itself. Group level with _since exports the resources
// of the members changed after _since, whether or not the patient joined
// the Group before _since: resources of newly added members that did not
// change since are not included. Referenced resources outside the
// compartment (Organization, Practitioner, ...) are not included.
//
// Authorization: the kick-off needs the $export operation (AccessPolicy)
// and, per exported type, the search interaction (SMART "s"; v1 read
// scopes include it); a Group export also needs read on the Group. A
// query-restricted scope (system/Observation.rs?category=laboratory)
// filters the exported resources through the matcher (see Filters);
// without a matcher the type is refused (403) when named in _type, left
// out with a note otherwise. Status and cancel are for the client that started the
// export (any of its valid tokens: exports outlive tokens) and root;
// others get 404. Polling also needs a token covering every exported
// type; a file download one covering the file's type.
//
// # Filters
//
// _typeFilter and query-restricted scopes are not run as searches over
// the index: the index holds current versions only, while an export
// holds the versions of its snapshot at transactionTime, which later
// writes may have changed or deleted. So each resource the export reads
// from the snapshot is decided on its own, by the in-memory matcher of
// the search engine (package internal/search/match, at the QueryMatcher
// seam), against that exact version: the same parameter definitions,
// normalization and comparison as a search, with the filter's queries
// ORed and the scope restriction ANDed with them.
//
// Because the matcher sees one resource at a time, a parameter whose
// answer depends on other resources cannot be decided consistently with
// the snapshot: a chained parameter (subject:Patient.name=...) would need
// the referenced resource as of transactionTime, and _has the resources
// pointing at this one. Evaluating those against current data would mix
// two points in time, and ignoring them would widen the filter (for a
// scope restriction, widen access). They are therefore refused at
// kick-off with 400 and an OperationOutcome naming the parameter, for
// _typeFilter and for a grant whose query restriction holds one alike; so
// are the other parameters one resource cannot decide (special
// parameters such as near, _text, _content, _filter, _list). Filters are
// compiled at kick-off, so a bad one never reaches a worker.
//
// # Status and manifest
//
// While running: 202 with X-Progress and Retry-After (--export-poll-
// interval, 2s); polling sooner gets 429 with Retry-After. Done: 200,
// Content-Type application/json, Expires, and the manifest
// (transactionTime, request, requiresAccessToken: true, output with
// type, url and count, error, and deleted with _since). A failed export
// answers 500 with an OperationOutcome. DELETE answers 202; afterwards
// the status URL and the files answer 404 and the files are removed.
//
// # Files
//
// One resource type per file, application/fhir+ndjson. A type is split
// into several files at 100,000 resources or 256 MiB of NDJSON, whichever
// comes first (--export-file-max-resources, --export-file-max-bytes), and
// a full export of more than 500,000 history rows has files per range of
// rows as well.
// Files are stored gzip-compressed: a client that sends Accept-Encoding:
// gzip gets them with Content-Encoding: gzip, any other one the NDJSON
// decompressed on the fly; Range requests (with If-Range) work on either
// representation, so interrupted downloads resume. Storage is a local
// directory (--export-dir, default <data-dir>/exports) or an
// S3-compatible bucket (--export-storage s3), whose files are either
// streamed through fhirgate (proxy) or reached by a 307 redirect to a
// presigned URL valid for a minute (--export-download redirect,
// --export-presign-ttl), after the same token checks. Finished exports
// and their files are removed an hour after completion
// (--export-retention); a cancelled one at once.
//
// # Engine
//
// Jobs are rows, not goroutines. A kick-off stores the job with one plan
// task and returns; workers (--export-workers per process) claim tasks
// under leases (FOR UPDATE SKIP LOCKED on PostgreSQL), so several servers
// on one database share the work and each task runs once. The plan task,
// once the snapshot is final, adds the real tasks. A full export reads
// the history table in seq order (its physical order: sequential reads)
// in range tasks of 500,000 rows, each writing every type of its range;
// an export with _since reads each changed type through the (type, ts)
// index instead, with one more task per type with deletions. Lines are
// batched per type and gzipped as separate members by a pool of
// compressors, so memory stays bounded whatever the number of types. Every
// 50,000 resources a task syncs its spool files and records its cursor
// and the durable size of each part in its checkpoint. A worker that takes
// over a task after a crash (when the lease expires, --export-lease) keeps
// exactly the durable bytes and continues from the cursor: no line is lost
// or written twice. If the spool file of a part is gone (another machine
// took over), that part is written again from its start. Finished parts
// move to the storage together with a checkpoint that records them as
// files. Lease tokens fence a worker whose lease expired: its checkpoints
// fail, and its files carry its token, so they can never replace another's.
//
// On SQLite the snapshot is the newest version at the kick-off (writers
// are serialized). On PostgreSQL, where writers run concurrently, the
// kick-off reads the clock and then takes a transaction id; the workers
// wait until every older transaction has ended before scanning, so a
// write that had stamped its version before the snapshot but committed
// after the kick-off is still exported, and nothing stamped later is.
package export
