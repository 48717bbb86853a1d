package fhirapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/store"
)

// bundleIn is the part of an incoming Bundle that batch and transaction
// processing read.
type bundleIn struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  *struct {
			Method      string `json:"method"`
			URL         string `json:"url"`
			IfMatch     string `json:"ifMatch"`
			IfNoneExist string `json:"ifNoneExist"`
		} `json:"request"`
	} `json:"entry"`
}

// op is one parsed entry of a batch or transaction.
type op struct {
	index       int
	method      string
	url         string // as the client wrote it
	typ, id     string
	vid         string // GET of a version
	history     bool   // GET .../_history
	query       url.Values
	fullURL     string
	body        []byte // compact JSON of entry.resource
	res         *resource.Resource
	ifMatch     int64
	ifNoneExist string
}

// BundleOptions are request-level preferences for batch and transaction.
type BundleOptions struct {
	// Representation puts written resources into the response entries
	// (Prefer: return=representation).
	Representation bool
}

// Bundle processes a batch or transaction Bundle posted to the base URL (R4
// http.html#transaction). A transaction is atomic: every entry succeeds or
// nothing is stored, and the first failure answers for the whole Bundle. A
// batch runs every entry on its own and reports each one's status.
func (s *Service) Bundle(ctx context.Context, body []byte, opts BundleOptions) (*Result, error) {
	var in bundleIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fhir.Invalid("body is not a valid Bundle: %v", err)
	}
	if in.ResourceType != "Bundle" {
		return nil, fhir.Invalid("POST to the base URL takes a Bundle, not %q", in.ResourceType)
	}
	if len(in.Entry) > s.maxEntry {
		return nil, fhir.Errorf(http.StatusRequestEntityTooLarge, fhir.IssueTooCostly,
			"the Bundle has %d entries; the limit is %d: split it", len(in.Entry), s.maxEntry)
	}
	switch in.Type {
	case "transaction":
		if err := s.authorize(ctx, authz.Request{Interaction: authz.Transaction, Method: http.MethodPost}); err != nil {
			return nil, err
		}
		return s.transaction(ctx, &in, opts)
	case "batch":
		if err := s.authorize(ctx, authz.Request{Interaction: authz.Batch, Method: http.MethodPost}); err != nil {
			return nil, err
		}
		return s.batch(ctx, &in, opts)
	}
	return nil, fhir.Invalid("Bundle.type %q: POST to the base URL takes a batch or transaction Bundle", in.Type)
}

// parseOps parses every entry; a transaction fails on the first bad one, a
// batch reports each bad one in its own response entry.
func (s *Service) parseOps(in *bundleIn) ([]*op, []error) {
	ops := make([]*op, len(in.Entry))
	errs := make([]error, len(in.Entry))
	for i := range in.Entry {
		e := &in.Entry[i]
		o := &op{index: i, fullURL: e.FullURL}
		ops[i] = o
		if e.Request == nil {
			errs[i] = fhir.Invalid("entry %d has no request", i)
			continue
		}
		o.method, o.url, o.ifNoneExist = strings.ToUpper(e.Request.Method), e.Request.URL, e.Request.IfNoneExist
		var err error
		if o.ifMatch, err = ParseETag(e.Request.IfMatch); err != nil {
			errs[i] = err
			continue
		}
		if err := s.parseEntryURL(o); err != nil {
			errs[i] = err
			continue
		}
		if len(e.Resource) > 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, e.Resource); err != nil {
				errs[i] = fhir.Invalid("entry %d resource: %v", i, err)
				continue
			}
			o.body = buf.Bytes()
		}
		errs[i] = checkEntry(o)
	}
	return ops, errs
}

// parseEntryURL reads entry.request.url: relative to the base ("Patient",
// "Patient/1", "Patient/1/_history/2", "Patient?identifier=x") or
// absolute under this server's base.
func (s *Service) parseEntryURL(o *op) error {
	u := strings.TrimPrefix(o.url, s.base)
	u = strings.TrimPrefix(u, "/")
	path, rawQuery, _ := strings.Cut(u, "?")
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return fhir.Invalid("entry %d request.url %q: bad query: %v", o.index, o.url, err)
		}
		o.query = q
	}
	seg := strings.Split(path, "/")
	if path == "" || len(seg) > 4 {
		return fhir.Invalid("entry %d request.url %q: want Type, Type/id or Type/id/_history/vid", o.index, o.url)
	}
	o.typ = seg[0]
	if err := checkType(o.typ); err != nil {
		return err
	}
	switch len(seg) {
	case 2:
		if seg[1] == "_history" {
			o.history = true
			break
		}
		o.id = seg[1]
	case 3:
		if seg[2] != "_history" {
			return fhir.Invalid("entry %d request.url %q: want Type/id/_history", o.index, o.url)
		}
		o.id, o.history = seg[1], true
	case 4:
		if seg[2] != "_history" {
			return fhir.Invalid("entry %d request.url %q: want Type/id/_history/vid", o.index, o.url)
		}
		o.id, o.vid = seg[1], seg[3]
	}
	if o.id != "" {
		return checkID(o.id)
	}
	return nil
}

// checkEntry checks that method, URL and resource fit together.
func checkEntry(o *op) error {
	bad := func(format string, args ...any) error {
		return fhir.Invalid("entry %d (%s %s): "+format, append([]any{o.index, o.method, o.url}, args...)...)
	}
	switch o.method {
	case http.MethodGet, http.MethodHead:
		o.method = http.MethodGet
	case http.MethodPost:
		if o.id != "" || o.history || o.query != nil {
			return bad("POST takes the type alone as its URL")
		}
		if o.body == nil {
			return bad("POST needs a resource")
		}
	case http.MethodPut:
		if o.id == "" || o.history || o.vid != "" {
			return bad("PUT takes Type/id; conditional update by search criteria is not supported in bundles yet")
		}
		if o.body == nil {
			return bad("PUT needs a resource")
		}
	case http.MethodDelete:
		if o.id == "" || o.history || o.vid != "" {
			return bad("DELETE takes Type/id; conditional delete by search criteria is not supported in bundles yet")
		}
	case http.MethodPatch:
		return fhir.Errorf(http.StatusMethodNotAllowed, fhir.IssueNotSupported, "entry %d: PATCH is not supported", o.index)
	default:
		return bad("unknown method %q", o.method)
	}
	if o.body != nil {
		r, err := parseBody(o.typ, o.body)
		if err != nil {
			return bad("%s", fhir.AsError(err).Diagnostics)
		}
		o.res = r
	}
	return nil
}

// transaction runs every entry in one store transaction, in the order R4
// http.html#trules prescribes: DELETE, POST, PUT, then GET; and rewrites
// references to urn:uuid: fullUrls of created resources to their new ids.
func (s *Service) transaction(ctx context.Context, in *bundleIn, opts BundleOptions) (*Result, error) {
	ops, errs := s.parseOps(in)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := checkOverlap(ops); err != nil {
		return nil, err
	}
	for _, o := range ops {
		if err := s.authorize(ctx, entryAuthz(o)); err != nil {
			return nil, prefixEntry(err, o)
		}
		if o.res != nil {
			s.prepare(o.res)
		}
	}
	results := make([]*Result, len(ops))
	err := s.store.Write(ctx, func(tx store.Tx) error {
		return s.runTransaction(ctx, tx, ops, results)
	})
	if err != nil {
		return nil, err
	}
	b := newBundleWriter("transaction-response", s.now(), -1, nil)
	for i, o := range ops {
		b.add(s.responseEntry(o, results[i], nil, opts))
	}
	return &Result{Status: http.StatusOK, Body: b.bytes()}, nil
}

func (s *Service) runTransaction(ctx context.Context, tx store.Tx, ops []*op, results []*Result) error {
	// The store may run this function again (a retry after a
	// serialization failure); state from an earlier run must not leak in.
	for _, o := range ops {
		if o.method == http.MethodPost {
			o.id = ""
		}
	}
	run := func(method string, fn func(o *op) (*Result, error)) error {
		for _, o := range ops {
			if o.method != method {
				continue
			}
			r, err := fn(o)
			if err != nil {
				return prefixEntry(err, o)
			}
			results[o.index] = r
		}
		return nil
	}
	if err := run(http.MethodDelete, func(o *op) (*Result, error) { return s.delete(ctx, tx, o.typ, o.id, o.ifMatch) }); err != nil {
		return err
	}
	// Resolve the identity of every created resource first, so that
	// references between entries can point at them.
	refs := map[string]string{}
	existing := map[int]*Result{}
	for _, o := range ops {
		switch o.method {
		case http.MethodPost:
			if o.ifNoneExist != "" {
				v, err := s.matchOne(ctx, tx, o.typ, o.ifNoneExist, "ifNoneExist")
				if err != nil {
					return prefixEntry(err, o)
				}
				if v != nil {
					existing[o.index] = &Result{Status: http.StatusOK, Version: v, Location: s.versionURL(v)}
					o.id = v.ID
				}
			}
			if o.id == "" {
				o.id = newID(s.now())
			}
		case http.MethodPut:
		default:
			continue
		}
		if strings.HasPrefix(o.fullURL, "urn:uuid:") || strings.HasPrefix(o.fullURL, "urn:oid:") {
			refs[o.fullURL] = o.typ + "/" + o.id
		}
	}
	for _, o := range ops {
		if o.res == nil || len(refs) == 0 || !bytes.Contains(o.body, []byte(`"urn:`)) {
			continue
		}
		r, err := resource.Parse(rewriteReferences(o.body, refs))
		if err != nil {
			return prefixEntry(fhir.Invalid("%v", err), o)
		}
		r.ID = o.res.ID
		o.res = r
	}
	err := run(http.MethodPost, func(o *op) (*Result, error) {
		if r := existing[o.index]; r != nil {
			return r, nil
		}
		o.res.ID = o.id
		v, err := tx.Create(ctx, o.res)
		if err != nil {
			return nil, storeError(err, o.typ, o.id)
		}
		return &Result{Status: http.StatusCreated, Version: v, Location: s.versionURL(v)}, nil
	})
	if err != nil {
		return err
	}
	if err := run(http.MethodPut, func(o *op) (*Result, error) { return s.update(ctx, tx, o.res, o.id, o.ifMatch) }); err != nil {
		return err
	}
	return run(http.MethodGet, func(o *op) (*Result, error) { return s.getEntry(ctx, tx, o) })
}

// checkOverlap refuses a transaction that touches one resource twice (R4
// http.html#trules: overlapping identities SHALL fail the transaction).
func checkOverlap(ops []*op) error {
	seen := map[string]int{}
	for _, o := range ops {
		if o.id == "" || o.method == http.MethodGet {
			continue
		}
		key := o.typ + "/" + o.id
		if j, dup := seen[key]; dup {
			return fhir.Invalid("entries %d and %d both change %s; a transaction may touch each resource once", j, o.index, key)
		}
		seen[key] = o.index
	}
	return nil
}

// getEntry runs a GET entry: read, vread or history.
func (s *Service) getEntry(ctx context.Context, tx store.Tx, o *op) (*Result, error) {
	switch {
	case o.vid != "":
		return s.VRead(ctx, o.typ, o.id, o.vid)
	case o.history:
		return s.History(ctx, o.typ, o.id, o.query)
	case o.id != "" && tx != nil:
		v, err := tx.Read(ctx, o.typ, o.id)
		if err != nil {
			return s.readError(v, err, o.typ, o.id)
		}
		if err := s.checkRestricted(ctx, authz.Read, v); err != nil {
			return nil, err
		}
		return &Result{Status: http.StatusOK, Version: v}, nil
	case o.id != "":
		return s.Read(ctx, o.typ, o.id)
	}
	return s.runSearch(ctx, SearchRequest{Type: o.typ, Params: o.query})
}

func entryAuthz(o *op) authz.Request {
	r := authz.Request{Method: o.method, Type: o.typ, ID: o.id, Query: o.query, Body: o.body}
	switch {
	case o.method == http.MethodPost:
		r.Interaction = authz.Create
	case o.method == http.MethodPut:
		r.Interaction = authz.Update
	case o.method == http.MethodDelete:
		r.Interaction = authz.Delete
	case o.vid != "":
		r.Interaction = authz.VRead
	case o.history && o.id != "":
		r.Interaction = authz.HistoryInstance
	case o.history:
		r.Interaction = authz.HistoryType
	case o.id != "":
		r.Interaction = authz.Read
	default:
		r.Interaction = authz.SearchType
	}
	return r
}

// prefixEntry names the failing entry in a FHIR error.
func prefixEntry(err error, o *op) error {
	if fe := fhir.AsError(err); fe != nil {
		prefix := fmt.Sprintf("entry %d (%s %s): ", o.index, o.method, o.url)
		if !strings.HasPrefix(fe.Diagnostics, fmt.Sprintf("entry %d", o.index)) {
			c := *fe
			c.Diagnostics = prefix + fe.Diagnostics
			return &c
		}
	}
	return err
}

// batch runs each entry on its own (R4 http.html#brules): one entry's
// failure does not affect the others.
func (s *Service) batch(ctx context.Context, in *bundleIn, opts BundleOptions) (*Result, error) {
	ops, errs := s.parseOps(in)
	b := newBundleWriter("batch-response", s.now(), -1, nil)
	for i, o := range ops {
		var res *Result
		err := errs[i]
		if err == nil {
			res, err = s.batchEntry(ctx, o)
		}
		if err != nil && fhir.AsError(err) == nil {
			s.log.ErrorContext(ctx, "batch entry failed", "entry", i, "err", err)
			err = fhir.Internal(err)
		}
		b.add(s.responseEntry(o, res, fhir.AsError(err), opts))
	}
	return &Result{Status: http.StatusOK, Body: b.bytes()}, nil
}

func (s *Service) batchEntry(ctx context.Context, o *op) (*Result, error) {
	switch o.method {
	case http.MethodPost:
		return s.Create(ctx, o.typ, o.body, o.ifNoneExist)
	case http.MethodPut:
		return s.Update(ctx, o.typ, o.id, o.body, etagOrEmpty(o.ifMatch))
	case http.MethodDelete:
		return s.Delete(ctx, o.typ, o.id, etagOrEmpty(o.ifMatch))
	}
	if err := s.authorize(ctx, entryAuthz(o)); err != nil {
		return nil, err
	}
	return s.getEntry(ctx, nil, o)
}

func etagOrEmpty(vid int64) string {
	if vid == 0 {
		return ""
	}
	return ETag(vid)
}

// responseEntry renders the response entry of one request entry.
func (s *Service) responseEntry(o *op, res *Result, fe *fhir.Error, opts BundleOptions) entry {
	if fe != nil {
		return entry{Response: &entryResponse{Status: statusLine(fe.Status), Outcome: fe.Outcome().JSON()}}
	}
	e := entry{Response: &entryResponse{Status: statusLine(res.Status), Location: res.Location}}
	if res.Body != nil {
		e.Resource = res.Body
		return e
	}
	if v := res.Version; v != nil {
		e.Response.Etag = ETag(v.VersionID)
		e.Response.LastModified = fhir.FormatInstant(v.LastUpdated)
		if !v.Deleted {
			e.FullURL = s.resourceURL(v.Type, v.ID)
			if o.method == http.MethodGet || opts.Representation {
				e.Resource = v.Body
			}
		}
	}
	return e
}

func statusLine(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// rewriteReferences replaces Reference.reference values that name a key of
// refs (a urn:uuid: fullUrl) with the resource's new Type/id. body is compact
// JSON, in which an object member always follows { or , — so the pattern
// cannot match text inside a string, where quotes are escaped.
func rewriteReferences(body []byte, refs map[string]string) []byte {
	var out []byte
	const key = `"reference":"`
	i := 0
	for {
		j := bytes.Index(body[i:], []byte(key))
		if j < 0 {
			break
		}
		j += i
		start := j + len(key) - 1 // the opening quote of the value
		end := skipJSONString(body, start)
		if j > 0 && (body[j-1] == '{' || body[j-1] == ',') {
			var val string
			if json.Unmarshal(body[start:end], &val) == nil {
				if to, ok := refs[val]; ok {
					out = append(out, body[i:start]...)
					out = strconv.AppendQuote(out, to)
					i = end
					continue
				}
			}
		}
		out = append(out, body[i:end]...)
		i = end
	}
	if out == nil {
		return body
	}
	return append(out, body[i:]...)
}

func skipJSONString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}
