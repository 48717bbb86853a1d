// Package loader loads FHIR resources from NDJSON files (one resource per
// line, plain or gzip-compressed, any resource types, any size) into a
// fhirgate store or, over the FHIR REST API, into any FHIR server.
//
// Every resource keeps its id: loading is PUT (update as create, R4
// http.html#update), so loading the same files twice leaves the same
// resources (with a second version each) and an interrupted load can simply
// be run again.
//
// A load is a pipeline with bounded memory whatever the size of the input:
// one goroutine reads the files in chunks of lines, Options.Workers
// goroutines parse and validate the chunks in parallel, and the chunks are
// then taken back in input order and handed to the destination:
//
//   - ToStore writes them straight into a store.ResourceStore, BatchSize
//     resources per database transaction, one transaction at a time in
//     input order (the fast path: the SQLite store has a single writer
//     anyway, and in-order writes make the last line of a repeated id win).
//   - ToServer posts them as transaction (or batch) Bundles of PUT entries
//     (R4 http.html#transaction), Parallel Bundles at a time, through any
//     http.Client: the Client of a client.TokenSource authorizes each
//     request and, when a token expires mid-load and the server answers
//     401, fetches a new one and sends the Bundle again.
//
// An invalid line (not JSON, not a FHIR resource, no id) stops the load with
// a *LineError naming the file and line, unless Options.SkipInvalid is set,
// in which case it is counted and reported through Options.OnInvalid.
// Options.OnProgress receives resources and bytes as they are written, for
// a progress bar or log lines.
package loader
