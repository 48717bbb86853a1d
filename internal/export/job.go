package export

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Task kinds. A job starts with one plan task, which (once the snapshot is
// final) looks at the store and adds one output task per type that has
// versions, one deleted task per type that has deletions (with _since),
// and one error task when there are messages for the manifest's error
// array.
const (
	kindPlan    = "plan"
	kindOutput  = "output"
	kindDeleted = "deleted"
	kindError   = "error"
)

// Params are the resolved parameters of a job, stored with it as JSON: the
// worker, which runs without the caller's credentials, needs everything
// the kick-off decided.
type Params struct {
	Level   Level  `json:"level"`
	GroupID string `json:"group,omitempty"`
	// Since is _since in Unix microseconds, 0 when absent.
	Since int64 `json:"since,omitempty"`
	// Types are the types to export, in order: _type within the grant, or
	// every permitted type of the level.
	Types    []string `json:"types"`
	Elements []string `json:"elements,omitempty"`
	Patients []string `json:"patients,omitempty"`
	// TypeFilters are the _typeFilter queries per type (a resource must
	// match one of them).
	TypeFilters map[string][]string `json:"typeFilters,omitempty"`
	// ScopeFilters are the query restrictions of the caller's grant per
	// type (a resource must match one of them).
	ScopeFilters map[string][]string `json:"scopeFilters,omitempty"`
	Associated   []string            `json:"includeAssociatedData,omitempty"`
	// Issues go to the manifest's error file.
	Issues []fhir.Issue `json:"issues,omitempty"`
}

func (p *Params) since() time.Time {
	if p.Since == 0 {
		return time.Time{}
	}
	return time.UnixMicro(p.Since).UTC()
}

// startCursor is where a scan of the job's snapshot begins: after _since
// when given (export.html: resources changed after _since), else at the
// beginning.
func (p *Params) startCursor() store.ExportCursor {
	if p.Since == 0 {
		return store.ExportCursor{}
	}
	return store.ExportCursor{TS: p.Since, Seq: math.MaxInt64}
}

// elementsFor returns the _elements that apply to typ: the unprefixed
// ones and those prefixed with typ.
func (p *Params) elementsFor(typ string) []string {
	var out []string
	for _, e := range p.Elements {
		t, name, prefixed := strings.Cut(e, ".")
		switch {
		case !prefixed:
			out = append(out, e)
		case t == typ:
			out = append(out, name)
		}
	}
	return out
}

func decodeParams(job *store.ExportJob) (*Params, error) {
	var p Params
	if err := json.Unmarshal(job.Params, &p); err != nil {
		return nil, fmt.Errorf("export job %s: bad params: %w", job.ID, err)
	}
	return &p, nil
}

// queries decodes stored filter queries.
func queries(raw []string) ([]url.Values, error) {
	out := make([]url.Values, 0, len(raw))
	for _, r := range raw {
		v, err := url.ParseQuery(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// fileName is the name of a finished file in its URL: the type, the task
// and the part number, with the manifest array for deleted and error files.
func fileName(kind, typ string, seq, part int) string {
	switch kind {
	case kindDeleted:
		return fmt.Sprintf("deleted.%s.%d.%d.ndjson", typ, seq, part)
	case kindError:
		return fmt.Sprintf("error.%d.ndjson", part)
	}
	return fmt.Sprintf("%s.%d.%d.ndjson", typ, seq, part)
}

// storageKey locates a part in the file storage. It carries the lease
// token of the worker that wrote it, so that a worker whose lease passed
// to another can never overwrite the file the other one committed.
func storageKey(jobID, kind, typ string, seq, part int, token int64) string {
	return fmt.Sprintf("%s/%s-%s-%d-%d-%d.ndjson.gz", jobID, kind, typ, seq, part, token)
}

// fileType is the manifest type of a task's files: deleted files hold
// transaction Bundles, error files OperationOutcomes.
func fileType(t *store.ExportTask) string {
	switch t.Kind {
	case kindDeleted:
		return "Bundle"
	case kindError:
		return "OperationOutcome"
	}
	return t.Type
}

// fileSource is the type whose permission covers a task's files.
func fileSource(t *store.ExportTask) string {
	if t.Kind == kindError {
		return ""
	}
	return t.Type
}
