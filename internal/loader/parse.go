package loader

import (
	"errors"
	"fmt"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/resource"
)

// errNoID is the error of a line whose resource has no id.
var errNoID = errors.New("the resource has no id: load keeps each resource's id (PUT Type/id), so every line needs one")

// parseLine validates one line as a FHIR R4 resource that a PUT can store:
// valid JSON, a known resourceType, a valid id.
func parseLine(raw []byte) (*resource.Resource, error) {
	r, err := resource.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a FHIR resource: %w", err)
	}
	if !fhir.IsResourceType(r.Type) {
		return nil, fmt.Errorf("resourceType %q is not a FHIR R4 resource type", r.Type)
	}
	if r.ID == "" {
		return nil, errNoID
	}
	if !fhir.ValidID(r.ID) {
		return nil, fmt.Errorf("id %q is not a valid FHIR id (1 to 64 characters from A-Z a-z 0-9 - .)", r.ID)
	}
	return r, nil
}

// parseChunk parses every line of c in place, and runs the store's
// preparation (index extraction) on each valid resource when there is one,
// so that this work spreads over the parse workers.
func parseChunk(c *chunk, prepare func(*resource.Resource) error) {
	for i := range c.recs {
		if c.recs[i].err == nil {
			c.recs[i].res, c.recs[i].err = parseLine(c.recs[i].raw)
		}
		if c.recs[i].err == nil && prepare != nil {
			c.recs[i].err = prepare(c.recs[i].res)
		}
	}
}
