package fhirapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/store"
)

// History lists versions newest first as a history Bundle (R4
// http.html#history) at instance (typ and id), type (typ) or system level.
// Parameters: _count, _since (an instant) and _cursor, the opaque position
// that next links carry.
func (s *Service) History(ctx context.Context, typ, id string, params url.Values) (*Result, error) {
	req := authz.Request{Method: http.MethodGet, Type: typ, ID: id, Query: params, Interaction: authz.HistorySystem}
	switch {
	case id != "":
		if err := s.checkInstance(typ, id); err != nil {
			return nil, err
		}
		req.Interaction = authz.HistoryInstance
	case typ != "":
		if err := checkType(typ); err != nil {
			return nil, err
		}
		req.Interaction = authz.HistoryType
	}
	q := store.HistoryQuery{Type: typ, ID: id}
	var err error
	if q.Count, err = s.pageCount(params); err != nil {
		return nil, err
	}
	if since := params.Get("_since"); since != "" {
		t, err := fhir.ParseInstant(since)
		if err != nil {
			return nil, fhir.Invalid("_since=%q: want a FHIR instant such as 2024-01-02T03:04:05Z", since)
		}
		q.Since = t
	}
	if c := params.Get("_cursor"); c != "" {
		if q.After, err = parseCursor(c); err != nil {
			return nil, err
		}
	}
	if err := s.authorize(ctx, req); err != nil {
		return nil, err
	}
	var page *store.HistoryPage
	if q.Count > 0 {
		if page, err = s.store.History(ctx, q); err != nil {
			return nil, err
		}
		if page.Versions, err = s.filterHistory(ctx, req.Interaction, page.Versions); err != nil {
			return nil, err
		}
	} else {
		page = &store.HistoryPage{}
	}
	return &Result{Status: http.StatusOK, Body: s.historyBundle(page, typ, id, params)}, nil
}

func (s *Service) historyBundle(page *store.HistoryPage, typ, id string, params url.Values) []byte {
	path := s.base
	if typ != "" {
		path += "/" + typ
	}
	if id != "" {
		path += "/" + id
	}
	path += "/_history"
	links := []Link{{Relation: "self", URL: withQuery(path, params)}}
	if page.Next != nil {
		next := cloneValues(params)
		next.Set("_cursor", formatCursor(page.Next))
		links = append(links, Link{Relation: "next", URL: withQuery(path, next)})
	}
	b := newBundleWriter("history", s.now(), -1, links)
	for i := range page.Versions {
		v := &page.Versions[i]
		b.add(s.historyEntry(v))
	}
	return b.bytes()
}

func (s *Service) historyEntry(v *store.Version) entry {
	e := entry{FullURL: s.resourceURL(v.Type, v.ID)}
	resp := &entryResponse{Etag: ETag(v.VersionID), LastModified: fhir.FormatInstant(v.LastUpdated)}
	switch v.Method {
	case http.MethodPost:
		e.Request = &entryRequest{Method: v.Method, URL: v.Type}
		resp.Status = "201 Created"
	case http.MethodDelete:
		e.Request = &entryRequest{Method: v.Method, URL: v.Type + "/" + v.ID}
		resp.Status = "204 No Content"
	default:
		e.Request = &entryRequest{Method: v.Method, URL: v.Type + "/" + v.ID}
		resp.Status = "200 OK"
	}
	if !v.Deleted {
		e.Resource = v.Body
	}
	e.Response = resp
	return e
}

func formatCursor(c *store.HistoryCursor) string {
	return strconv.FormatInt(c.TS, 36) + "." + strconv.FormatInt(c.Seq, 36)
}

func parseCursor(s string) (*store.HistoryCursor, error) {
	a, b, ok := strings.Cut(s, ".")
	ts, err1 := strconv.ParseInt(a, 36, 64)
	seq, err2 := strconv.ParseInt(b, 36, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, fhir.Invalid("_cursor=%q is not a position this server issued; start again from the first page", s)
	}
	return &store.HistoryCursor{TS: ts, Seq: seq}, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
