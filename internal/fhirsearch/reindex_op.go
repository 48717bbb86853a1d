package fhirsearch

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/httpapi"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

// Reindexer rebuilds the search index (sqlstore.Store).
type Reindexer interface {
	IndexStates(ctx context.Context) ([]sqlstore.IndexState, error)
	Reindex(ctx context.Context, opts sqlstore.ReindexOptions) (*sqlstore.ReindexResult, error)
}

// ReindexOperation is the admin operation $reindex at the system level,
// the HTTP twin of `fhirgate reindex`, for the root client only:
//
//	GET  [base]/$reindex              which types are stale (Parameters)
//	POST [base]/$reindex[?_type=A,B]  rebuild the stale (or the named) types
//
// POST runs in the request; an interrupted or timed-out run resumes on the
// next call, since every batch commits with the position reached.
func ReindexOperation(st Reindexer) httpapi.Operation {
	return httpapi.Operation{Name: "$reindex", Level: httpapi.SystemLevel,
		Handler: func(w http.ResponseWriter, r *http.Request, _, _ string) {
			body, status, err := reindex(r, st)
			if err != nil {
				fe := fhir.AsError(err)
				if fe == nil {
					fe = &fhir.Error{Status: http.StatusInternalServerError, Code: fhir.IssueException,
						Diagnostics: "reindex failed; run it again to resume", Err: err}
				}
				body, status = fe.Outcome().JSON(), fe.Status
			}
			w.Header().Set("Content-Type", fhir.MediaJSON+"; charset=utf-8")
			w.WriteHeader(status)
			w.Write(body)
		}}
}

func reindex(r *http.Request, st Reindexer) ([]byte, int, error) {
	p := authz.FromContext(r.Context())
	switch {
	case p == nil:
		return nil, 0, fhir.Unauthorized("authentication required")
	case !p.Root:
		return nil, 0, fhir.Forbidden("$reindex is for the root client only")
	}
	switch r.Method {
	case http.MethodGet:
		states, err := st.IndexStates(r.Context())
		if err != nil {
			return nil, 0, err
		}
		var params []param
		for _, s := range states {
			if !s.Current {
				params = append(params, param{Name: "stale", ValueString: s.Type})
			}
		}
		return parameters(params), http.StatusOK, nil
	case http.MethodPost:
		opts := sqlstore.ReindexOptions{}
		if t := r.URL.Query().Get("_type"); t != "" {
			opts.Types, opts.Force = strings.Split(t, ","), true
			for _, typ := range opts.Types {
				if !fhir.IsResourceType(typ) {
					return nil, 0, fhir.Invalid("_type: %q is not a resource type", typ)
				}
			}
		}
		res, err := st.Reindex(r.Context(), opts)
		if err != nil {
			return nil, 0, err
		}
		params := []param{{Name: "resources", ValueInteger: json.Number(strconv.FormatInt(res.Resources, 10))}}
		for _, t := range res.Types {
			params = append(params, param{Name: "type", ValueString: t})
		}
		return parameters(params), http.StatusOK, nil
	}
	return nil, 0, fhir.Errorf(http.StatusMethodNotAllowed, fhir.IssueNotSupported, "$reindex takes GET or POST")
}

// param is a Parameters.parameter with the value types used here.
type param struct {
	Name         string      `json:"name"`
	ValueString  string      `json:"valueString,omitempty"`
	ValueInteger json.Number `json:"valueInteger,omitempty"`
}

func parameters(ps []param) []byte {
	b, _ := json.Marshal(struct {
		ResourceType string  `json:"resourceType"`
		Parameter    []param `json:"parameter,omitempty"`
	}{"Parameters", ps})
	return b
}
