// Package bulk is a client for FHIR Bulk Data Access 2.0 exports
// (hl7.org/fhir/uv/bulkdata/STU2/export.html) that works with any
// conforming server.
//
// Client.Export runs a whole export: the kick-off at system, Patient or
// Group level with every parameter of the specification (Request), status
// polling that honours Retry-After and X-Progress and backs off otherwise,
// and the download of every file, Parallel at a time, streamed to disk
// through a fixed buffer, resumed with Range requests when a connection
// breaks, decompressed when gzipped, and checked against the manifest's
// counts. The manifest is written next to the files. Cancelling the
// context sends DELETE to the status URL. The steps are also available one
// by one: Client.Kickoff, Job.Poll, Job.Wait, Job.Cancel, Client.Download.
//
// Authorization is the http.Client's business: pass the Client of a
// client.TokenSource, and every request carries a valid token, refreshed
// during long exports, with a 401 retried once with a new token. Files
// whose manifest says requiresAccessToken: false are fetched without any
// token.
package bulk
