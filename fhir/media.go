package fhir

// Media types of the FHIR JSON and NDJSON formats (R4 http.html#mime,
// Bulk Data IG 2.0 export.html).
const (
	MediaJSON       = "application/fhir+json"
	MediaPlainJSON  = "application/json"
	MediaNDJSON     = "application/fhir+ndjson"
	MediaFormURL    = "application/x-www-form-urlencoded"
	MediaJSONUTF8   = MediaJSON + "; charset=utf-8"
	MediaNDJSONUTF8 = MediaNDJSON
)
