package fhirsearch

import (
	"encoding/json"
	"net/url"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

// bundle renders a page as a searchset Bundle (R4 bundle.html#searchset):
// self, next and previous links under the FHIR base, matches marked
// search.mode match, included resources include, and the warnings as an
// OperationOutcome entry with mode outcome (search.html#errors).
func (e *Engine) bundle(req fhirapi.SearchRequest, q *search.Query, page *sqlstore.SearchPage,
	included []sqlstore.Match, warnings []fhir.Issue) ([]byte, error) {
	path := e.cfg.Base + "/" + req.Type
	if req.CompartmentType != "" {
		path = e.cfg.Base + "/" + req.CompartmentType + "/" + req.CompartmentID + "/" + req.Type
	}
	links := []link{{Relation: "self", URL: withQuery(path, req.Params)}}
	if page.Next != "" {
		links = append(links, link{Relation: "next", URL: withQuery(path, withCursor(req.Params, page.Next))})
	}
	if page.Prev != "" {
		links = append(links, link{Relation: "previous", URL: withQuery(path, withCursor(req.Params, page.Prev))})
	}
	b := newBundle(e.cfg.Now(), page.Total, links)
	for _, m := range page.Matches {
		body, err := search.Subset(m.Type, m.Body, q.Summary, q.Elements)
		if err != nil {
			return nil, err
		}
		b.add(e.cfg.Base+"/"+m.Type+"/"+m.ID, body, "match")
	}
	for _, m := range included {
		b.add(e.cfg.Base+"/"+m.Type+"/"+m.ID, m.Body, "include")
	}
	if len(warnings) > 0 {
		o, _ := json.Marshal(fhir.OperationOutcome{ResourceType: "OperationOutcome", Issue: warnings})
		b.add("", o, "outcome")
	}
	return b.bytes(), nil
}

// withCursor returns params with _cursor set to c (the page position).
func withCursor(params url.Values, c string) url.Values {
	out := make(url.Values, len(params)+1)
	for k, vs := range params {
		out[k] = append([]string(nil), vs...)
	}
	out.Set("_cursor", c)
	return out
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
