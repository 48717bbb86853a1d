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
//     resources per database transaction (the fast path).
//   - ToServer posts them as transaction (or batch) Bundles of PUT entries
//     (R4 http.html#transaction) through any http.Client: the Client of
//     a client.TokenSource authorizes each request and, when a token
//     expires mid-load and the server answers 401, fetches a new one and
//     sends the Bundle again.
//
// Both keep Options.Parallel batches in flight: the SQLite store then
// commits several at once (one fsync for all of them), PostgreSQL and
// servers write them side by side. A batch waits for any batch in flight
// that changes one of its resources, so when an id appears twice the later
// line wins, as if everything were written in input order.
//
// An invalid line (not JSON, not a FHIR resource, no id) stops the load with
// a *LineError naming the file and line, unless Options.SkipInvalid is set,
// in which case it is counted and reported through Options.OnInvalid.
// Options.OnProgress receives resources and bytes as they are written, for
// a progress bar or log lines.
package loader
