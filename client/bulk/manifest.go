package bulk

import "encoding/json"

// Manifest is the body of a completed export's status response (Bulk Data
// 2.0 export.html#response---complete-status).
type Manifest struct {
	// TransactionTime is the instant the export's data is consistent with.
	TransactionTime string `json:"transactionTime"`
	// Request is the kick-off URL.
	Request string `json:"request"`
	// RequiresAccessToken tells whether file requests need the bearer
	// token; when false the URLs are capability URLs that SHALL NOT get one.
	RequiresAccessToken bool `json:"requiresAccessToken"`
	// Output lists the NDJSON files, one resource type each.
	Output []OutputFile `json:"output"`
	// Deleted lists files of transaction Bundles recording deletions.
	Deleted []OutputFile `json:"deleted,omitempty"`
	// Error lists files of OperationOutcome resources.
	Error []OutputFile `json:"error"`
	// Extension is server-specific data, kept as is.
	Extension json.RawMessage `json:"extension,omitempty"`
	// Raw is the manifest exactly as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// OutputFile is one file of a manifest.
type OutputFile struct {
	// Type is the resource type of every line of the file.
	Type string `json:"type"`
	// URL is the absolute URL of the file.
	URL string `json:"url"`
	// Count is the number of resources in the file, when the server says.
	Count *int64 `json:"count,omitempty"`
	// Extension is server-specific data, kept as is.
	Extension json.RawMessage `json:"extension,omitempty"`
}

// Files lists every file of m with the manifest array it came from:
// "output", "deleted" or "error".
func (m *Manifest) Files() []ManifestFile {
	var fs []ManifestFile
	for _, list := range []struct {
		kind  string
		files []OutputFile
	}{{KindOutput, m.Output}, {KindDeleted, m.Deleted}, {KindError, m.Error}} {
		for _, f := range list.files {
			fs = append(fs, ManifestFile{Kind: list.kind, OutputFile: f})
		}
	}
	return fs
}

// The manifest arrays a file can come from.
const (
	KindOutput  = "output"
	KindDeleted = "deleted"
	KindError   = "error"
)

// ManifestFile is an OutputFile with the array it was listed in.
type ManifestFile struct {
	// Kind is KindOutput, KindDeleted or KindError.
	Kind string
	OutputFile
}
