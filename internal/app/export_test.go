package app_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/export"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// fastExport tunes a test server's export for quick turnarounds.
func fastExport(c *app.Config) {
	c.Export.PollInterval = time.Second
	c.Export.IdleWait = 20 * time.Millisecond
	c.Export.SweepEvery = 100 * time.Millisecond
	c.Export.Lease = 3 * time.Second
}

// exportServers runs fn against a fresh export-tuned server per backend.
func exportServers(t *testing.T, fn func(t *testing.T, s *ts.Server), mod ...func(*app.Config)) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		fn(t, ts.Start(t, newURL(t), append([]func(*app.Config){fastExport}, mod...)...))
	})
}

// dataset is what seedStore loaded: the resources by type and id.
type dataset map[string]map[string][]byte

func (d dataset) count(types ...string) int {
	n := 0
	for _, t := range types {
		n += len(d[t])
	}
	return n
}

// seedStore loads the synthetic data set of n patients straight into the
// store, and returns it as stored (with id and meta).
func seedStore(t testing.TB, st store.ResourceStore, n int) dataset {
	t.Helper()
	ctx := context.Background()
	var rs []*resource.Resource
	err := seed.Generate(ctx, seed.Options{Patients: n, Seed: 7}, func(_, _ string, b []byte) error {
		r, err := resource.Parse(b)
		rs = append(rs, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d := dataset{}
	for len(rs) > 0 {
		batch := rs[:min(500, len(rs))]
		rs = rs[len(batch):]
		err := st.Write(ctx, func(tx store.Tx) error {
			for _, r := range batch {
				v, _, err := tx.Update(ctx, r, 0)
				if err != nil {
					return err
				}
				if d[v.Type] == nil {
					d[v.Type] = map[string][]byte{}
				}
				d[v.Type][v.ID] = v.Body
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// rootHTTP is an HTTP client that authenticates as root.
func rootHTTP() *http.Client {
	return &http.Client{Transport: basicAuth{}}
}

type basicAuth struct{}

func (basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth("root", ts.RootSecret)
	return http.DefaultTransport.RoundTrip(r)
}

// bulkFor returns an SDK client with hc, polling as fast as the server
// allows.
func bulkFor(s *ts.Server, hc *http.Client) *bulk.Client {
	c := bulk.New(s.URL+"/fhir", hc)
	c.Poll = bulk.PollPolicy{Initial: time.Second, Min: time.Second, MaxWait: 2 * time.Minute}
	return c
}

// smartHTTP is the HTTP client of a registered backend client: every
// request carries a token of scope, refreshed as needed.
func smartHTTP(t *testing.T, s *ts.Server, key *client.Key, id, scope string) *http.Client {
	t.Helper()
	src, err := client.NewTokenSource(client.Config{ClientID: id, Key: key, Scopes: strings.Fields(scope), FHIRBaseURL: s.URL + "/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	return src.Client()
}

// exported runs an export to completion and reads every file back.
func exported(t *testing.T, c *bulk.Client, req bulk.Request) (*bulk.Result, map[string][]string) {
	t.Helper()
	res, err := c.Export(context.Background(), req, t.TempDir())
	if err != nil {
		t.Fatalf("export %+v: %v", req, err)
	}
	return res, readFiles(t, res)
}

// readFiles returns the lines of the output files by type (files of one
// type concatenated in manifest order), and of deleted and error files
// under "deleted" and "error".
func readFiles(t *testing.T, res *bulk.Result) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, f := range res.Files {
		key := f.Type
		if f.Kind != bulk.KindOutput {
			key = f.Kind
		}
		fh, err := os.Open(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			out[key] = append(out[key], sc.Text())
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// compartmentTypes are the types a Patient-level export may hold.
func compartmentTypes() []string { return search.PatientCompartmentTypes() }

// assertExact checks that the lines of each type are exactly the stored
// bodies of want (byte for byte, each once).
func assertExact(t *testing.T, got map[string][]string, want dataset, types []string) {
	t.Helper()
	for _, typ := range types {
		lines := got[typ]
		if len(lines) != len(want[typ]) {
			t.Errorf("%s: %d lines, want %d", typ, len(lines), len(want[typ]))
			continue
		}
		seen := map[string]bool{}
		for _, l := range lines {
			var r struct{ ID string }
			json.Unmarshal([]byte(l), &r)
			if seen[r.ID] {
				t.Errorf("%s/%s exported twice", typ, r.ID)
			}
			seen[r.ID] = true
			if string(want[typ][r.ID]) != l {
				t.Errorf("%s/%s: exported\n%s\nstored\n%s", typ, r.ID, l, want[typ][r.ID])
			}
		}
	}
	for typ := range got {
		if typ != "error" && typ != "deleted" && !slices.Contains(types, typ) {
			t.Errorf("unexpected type %s in the export", typ)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestExportSystemLevel: a system-level export holds every resource of the
// store exactly as stored, with manifest counts matching the files.
func TestExportSystemLevel(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 4)
		c := bulkFor(s, rootHTTP())
		res, got := exported(t, c, bulk.Request{})
		assertExact(t, got, d, sortedKeys(d))
		m := res.Manifest
		if !m.RequiresAccessToken || !strings.HasPrefix(m.Request, s.URL+"/fhir/$export") || m.TransactionTime == "" ||
			len(m.Error) != 0 || m.Deleted != nil {
			t.Fatalf("manifest %s", m.Raw)
		}
		for _, f := range m.Output {
			if !strings.HasPrefix(f.URL, s.URL+"/fhir/$export-file/") || f.Count == nil {
				t.Fatalf("output item %+v", f)
			}
		}
	}, func(c *app.Config) { c.Export.FileMaxResources = 50 })
}

// kickoff starts an export by hand; it returns the response.
func kickoff(s *ts.Server, auth, method, path, body string, hdr map[string]string) *ts.Response {
	h := map[string]string{"Accept": "application/fhir+json", "Prefer": "respond-async"}
	for k, v := range hdr {
		h[k] = v
	}
	return s.Do(ts.Req{Method: method, Path: path, Body: body, Header: h, Auth: auth})
}

// statusPath turns an absolute status or file URL into a path of s.
func statusPath(t *testing.T, s *ts.Server, u string) string {
	t.Helper()
	p, ok := strings.CutPrefix(u, s.URL)
	if !ok {
		t.Fatalf("URL %q is not under %s", u, s.URL)
	}
	return p
}

// waitDone polls a status URL, honouring Retry-After, until the export
// completes; it returns the manifest response.
func waitDone(t *testing.T, s *ts.Server, auth, statusURL string) *ts.Response {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		r := s.Do(ts.Req{Method: "GET", Path: statusPath(t, s, statusURL), Auth: auth})
		switch r.StatusCode {
		case 200:
			return r
		case 202, 429:
			time.Sleep(retryAfter(r))
		default:
			t.Fatalf("status: %d %s", r.StatusCode, r.Body)
		}
	}
	t.Fatal("export not done after a minute")
	return nil
}

func retryAfter(r *ts.Response) time.Duration {
	n, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	return time.Duration(max(n, 1)) * time.Second
}

// manifestOf decodes a manifest response.
func manifestOf(t *testing.T, r *ts.Response) *bulk.Manifest {
	t.Helper()
	var m bulk.Manifest
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("manifest: %v\n%s", err, r.Body)
	}
	m.Raw = r.Body
	return &m
}

// idsOf returns the ids of NDJSON lines.
func idsOf(lines []string) []string {
	var out []string
	for _, l := range lines {
		var r struct{ ID string }
		json.Unmarshal([]byte(l), &r)
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

// patientRefs returns the ids of the Patients a stored resource names
// anywhere (the seed puts them only behind compartment parameters).
func patientRefs(body []byte) []string {
	var out []string
	s := string(body)
	for {
		i := strings.Index(s, `"Patient/`)
		if i < 0 {
			return out
		}
		s = s[i+9:]
		out = append(out, s[:strings.IndexByte(s, '"')])
	}
}

// inCompartments is the expected content of a Patient or Group export:
// the resources of compartment types that name one of the patients (all
// when patients is nil), and those Patients.
func inCompartments(d dataset, patients map[string]bool) dataset {
	out := dataset{}
	for _, typ := range compartmentTypes() {
		for id, body := range d[typ] {
			in := typ == "Patient" && (patients == nil || patients[id])
			for _, p := range patientRefs(body) {
				in = in || patients == nil || patients[p]
			}
			if in {
				if out[typ] == nil {
					out[typ] = map[string][]byte{}
				}
				out[typ][id] = body
			}
		}
	}
	return out
}

// TestExportPatientAndGroupLevel: Patient- and Group-level exports hold
// exactly the Patient compartments of all patients, of the Group's
// members, or of the patients named, and nothing else.
func TestExportPatientAndGroupLevel(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 10)
		c := bulkFor(s, rootHTTP())
		_, got := exported(t, c, bulk.Request{Level: bulk.Patient})
		want := inCompartments(d, nil)
		assertExact(t, got, want, sortedKeys(want))
		if len(got["Organization"]) != 0 || len(got["Practitioner"]) != 0 {
			t.Fatalf("a Patient export holds types outside the compartment")
		}

		// A Group with at least two members but not everyone.
		var group string
		members := map[string]bool{}
		for _, g := range seed.Groups(7) {
			clear(members)
			for _, p := range patientRefs(d["Group"][g.ID]) {
				members[p] = true
			}
			if len(members) >= 2 && len(members) < len(d["Patient"]) {
				group = g.ID
				break
			}
		}
		if group == "" {
			t.Fatal("no Group with a proper subset of the patients of at least two")
		}
		res, got := exported(t, c, bulk.Request{GroupID: group})
		want = inCompartments(d, members)
		assertExact(t, got, want, sortedKeys(want))
		if !strings.HasSuffix(res.Manifest.Request, "/fhir/Group/"+group+"/$export") {
			t.Fatalf("request %s", res.Manifest.Request)
		}

		// patient restricts both levels (POST only).
		var two []string
		for _, id := range sortedKeys(members)[:2] {
			two = append(two, "Patient/"+id)
		}
		pick := map[string]bool{strings.TrimPrefix(two[0], "Patient/"): true, strings.TrimPrefix(two[1], "Patient/"): true}
		res, got = exported(t, c, bulk.Request{Level: bulk.Patient, Patients: two, Types: []string{"Patient", "Observation", "Group"}})
		want = inCompartments(d, pick)
		assertExact(t, got, want, []string{"Patient", "Observation", "Group"})
		if !strings.HasSuffix(res.Manifest.Request, "/fhir/Patient/$export") {
			t.Fatalf("a POST kick-off's request has no parameters: %s", res.Manifest.Request)
		}
		_, got = exported(t, c, bulk.Request{GroupID: group, Patients: two[:1], Types: []string{"Patient", "Condition"}})
		want = inCompartments(d, map[string]bool{strings.TrimPrefix(two[0], "Patient/"): true})
		assertExact(t, got, want, []string{"Patient", "Condition"})

		// A non-member, an unknown patient, an unknown Group.
		var outsider string
		for id := range d["Patient"] {
			if !members[id] {
				outsider = id
			}
		}
		params := `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/` + outsider + `"}}]}`
		d1 := kickoff(s, "", "POST", "/fhir/Group/"+group+"/$export", params, nil).Expect(t, 400).Outcome(t)
		if !strings.Contains(d1, "not a member") {
			t.Fatalf("non-member: %s", d1)
		}
		params = `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/nobody"}}]}`
		kickoff(s, "", "POST", "/fhir/Patient/$export", params, nil).Expect(t, 400)
		kickoff(s, "", "GET", "/fhir/Group/no-such-group/$export", "", nil).Expect(t, 404).Outcome(t)
		kickoff(s, "", "GET", "/fhir/Patient/$export?_type=Organization", "", nil).Expect(t, 400).Outcome(t)
	})
}

// TestExportParameters: _type, _since with deletions, _elements,
// _outputFormat, includeAssociatedData, lenient handling.
func TestExportParameters(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 3)
		c := bulkFor(s, rootHTTP())
		_, got := exported(t, c, bulk.Request{Types: []string{"Patient", "Observation"}})
		assertExact(t, got, d, []string{"Patient", "Observation"})
		for _, f := range []string{"application/fhir+ndjson", "application/ndjson", "ndjson"} {
			if _, got := exported(t, c, bulk.Request{OutputFormat: f, Types: []string{"Patient"}}); len(got["Patient"]) != 3 {
				t.Fatalf("_outputFormat=%s: %d patients", f, len(got["Patient"]))
			}
		}

		// _since: changes after it, and deletions as transaction Bundles.
		since := time.Now()
		time.Sleep(5 * time.Millisecond)
		obs := sortedKeys(d["Observation"])
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Observation/" + obs[0], Body: string(d["Observation"][obs[0]])}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/" + obs[1]}).Expect(t, 204)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Condition/" + sortedKeys(d["Condition"])[0]}).Expect(t, 204)
		res, got := exported(t, c, bulk.Request{Since: since})
		if ids := idsOf(got["Observation"]); len(ids) != 1 || ids[0] != obs[0] || len(got) != 2 {
			t.Fatalf("_since export: %v", got)
		}
		if len(res.Manifest.Deleted) != 2 {
			t.Fatalf("deleted files %s", res.Manifest.Raw)
		}
		var urls []string
		for _, l := range got["deleted"] {
			var b struct {
				ResourceType, Type string
				Entry              []struct{ Request struct{ Method, URL string } }
			}
			json.Unmarshal([]byte(l), &b)
			if b.ResourceType != "Bundle" || b.Type != "transaction" || len(b.Entry) != 1 || b.Entry[0].Request.Method != "DELETE" {
				t.Fatalf("deleted line %s", l)
			}
			urls = append(urls, b.Entry[0].Request.URL)
		}
		sort.Strings(urls)
		if want := []string{"Condition/" + sortedKeys(d["Condition"])[0], "Observation/" + obs[1]}; !slices.Equal(urls, want) {
			t.Fatalf("deleted %v, want %v", urls, want)
		}
		for _, f := range res.Manifest.Deleted {
			if f.Type != "Bundle" {
				t.Fatalf("deleted file type %s", f.Type)
			}
		}

		// _elements: the named elements, the mandatory ones and SUBSETTED.
		_, got = exported(t, c, bulk.Request{Types: []string{"Patient", "Encounter"}, Elements: []string{"Patient.gender"}})
		for _, l := range got["Patient"] {
			var m map[string]any
			json.Unmarshal([]byte(l), &m)
			tags, _ := m["meta"].(map[string]any)["tag"].([]any)
			if m["gender"] == nil || m["name"] != nil || m["birthDate"] != nil || len(tags) == 0 ||
				tags[len(tags)-1].(map[string]any)["code"] != "SUBSETTED" {
				t.Fatalf("subsetted Patient %s", l)
			}
		}
		assertExact(t, map[string][]string{"Encounter": got["Encounter"]}, d, []string{"Encounter"})

		// includeAssociatedData and unsupported parameters under lenient
		// handling end up in the error file.
		res, got = exported(t, c, bulk.Request{Types: []string{"Patient"}, IncludeAssociatedData: []string{"LatestProvenanceResources"},
			TypeFilters: []string{"Observation?status=final"}, Lenient: true})
		if len(res.Manifest.Error) != 1 || len(got["error"]) != 2 || len(got["Patient"]) != 3 {
			t.Fatalf("error file %v in %s", got["error"], res.Manifest.Raw)
		}
		if !strings.Contains(got["error"][0], "_typeFilter") || !strings.Contains(got["error"][1], "includeAssociatedData") {
			t.Fatalf("error lines %v", got["error"])
		}
	})
}

// TestExportKickoffRefusals: every refused kick-off is a 4xx with an
// OperationOutcome that says why.
func TestExportKickoffRefusals(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		tests := []struct {
			name, method, path, body string
			hdr                      map[string]string
			status                   int
			diag                     string
		}{
			{"no Accept", "GET", "/fhir/$export", "", map[string]string{"Accept": ""}, 400, "Accept: application/fhir+json"},
			{"plain JSON Accept", "GET", "/fhir/$export", "", map[string]string{"Accept": "application/json"}, 400, "Accept: application/fhir+json"},
			{"no Prefer", "GET", "/fhir/$export", "", map[string]string{"Prefer": ""}, 400, "respond-async"},
			{"format", "GET", "/fhir/$export?_outputFormat=application/fhir%2Bjson", "", nil, 400, "_outputFormat"},
			{"bad since", "GET", "/fhir/$export?_since=yesterday", "", nil, 400, "_since"},
			{"future since", "GET", "/fhir/$export?_since=" + future, "", nil, 400, "in the future"},
			{"unknown type", "GET", "/fhir/$export?_type=Patient,Spaceship", "", nil, 400, "Spaceship"},
			{"unknown parameter", "GET", "/fhir/$export?_until=2020-01-01T00:00:00Z", "", nil, 400, "_until"},
			{"patient at system level", "POST", "/fhir/$export", `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/x"}}]}`,
				nil, 400, "Patient and Group exports only"},
			{"patient in a GET", "GET", "/fhir/Patient/$export?patient=Patient/x", "", nil, 400, "POST"},
			{"type filter with a chain", "GET", "/fhir/$export?_type=Patient&_typeFilter=Patient%3Forganization.name%3Dx", "", nil, 400, "cannot be evaluated on a single resource"},
			{"bad elements", "GET", "/fhir/$export?_elements=name.family", "", nil, 400, "_elements"},
			{"not a Parameters body", "POST", "/fhir/$export", `{"resourceType":"Patient"}`, nil, 400, "Parameters"},
			{"PUT", "PUT", "/fhir/$export", `{"resourceType":"Parameters"}`, nil, 405, "GET or POST"},
			{"no credentials", "GET", "/fhir/$export", "", map[string]string{"Authorization": ""}, 401, "authentication"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				auth := ""
				if _, ok := tt.hdr["Authorization"]; ok {
					auth = "none"
				}
				h := map[string]string{}
				for k, v := range tt.hdr {
					if k != "Authorization" {
						h[k] = v
					}
				}
				req := ts.Req{Method: tt.method, Path: tt.path, Body: tt.body, Auth: auth,
					Header: map[string]string{"Accept": "application/fhir+json", "Prefer": "respond-async"}}
				for k, v := range h {
					if v == "" {
						delete(req.Header, k)
					} else {
						req.Header[k] = v
					}
				}
				r := s.Do(req).Expect(t, tt.status)
				if d := r.Outcome(t); !strings.Contains(d, tt.diag) {
					t.Fatalf("diagnostics %q, want it to mention %q", d, tt.diag)
				}
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
					t.Fatalf("Content-Type %q", ct)
				}
			})
		}
	})
}

// TestExportAuthorization: who may start, poll, download and cancel, with
// which scopes.
func TestExportAuthorization(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 2)
		keyA := backendClient(t, s, "client-a", []string{"system/*.read"}, false)
		keyB := backendClient(t, s, "client-b", []string{"system/*.read"}, false)
		keyN := backendClient(t, s, "no-policy", []string{"system/*.read"}, true)
		full := bearer(token(t, s, keyA, "client-a", "system/*.read").AccessToken)
		other := bearer(token(t, s, keyB, "client-b", "system/*.read").AccessToken)

		// No credentials, or a client that no AccessPolicy admits.
		kickoff(s, "none", "GET", "/fhir/$export", "", nil).Expect(t, 401).Outcome(t)
		kickoff(s, "Bearer not-a-token", "GET", "/fhir/$export", "", nil).Expect(t, 401)
		kickoff(s, bearer(token(t, s, keyN, "no-policy", "system/*.read").AccessToken), "GET", "/fhir/$export", "", nil).Expect(t, 403)

		// A narrow grant: _type beyond it is refused, without _type the
		// export holds only the granted types.
		narrow := bearer(token(t, s, keyA, "client-a", "system/Patient.rs system/Coverage.rs").AccessToken)
		if d := kickoff(s, narrow, "GET", "/fhir/$export?_type=Patient,Condition", "", nil).Expect(t, 403).Outcome(t); !strings.Contains(d, "Condition") {
			t.Fatalf("403 should name the type: %q", d)
		}
		r := kickoff(s, narrow, "GET", "/fhir/$export", "", nil).Expect(t, 202)
		m := manifestOf(t, waitDone(t, s, narrow, r.Header.Get("Content-Location")))
		var types []string
		for _, f := range m.Output {
			types = append(types, f.Type)
		}
		if !slices.Equal(types, []string{"Coverage", "Patient"}) {
			t.Fatalf("narrow export holds %v", types)
		}

		// A query-restricted grant filters the type it restricts (the
		// filters themselves: restrict_test.go).
		restricted := bearer(token(t, s, keyA, "client-a", "system/Patient.rs system/Observation.rs?category=laboratory").AccessToken)
		r = kickoff(s, restricted, "GET", "/fhir/$export", "", nil).Expect(t, 202)
		m = manifestOf(t, waitDone(t, s, restricted, r.Header.Get("Content-Location")))
		if len(m.Output) != 2 || len(m.Error) != 0 {
			t.Fatalf("restricted export %s", m.Raw)
		}

		// The full export of client-a.
		r = kickoff(s, full, "GET", "/fhir/$export?_type=Patient,Observation", "", nil).Expect(t, 202)
		status := statusPath(t, s, r.Header.Get("Content-Location"))
		m = manifestOf(t, waitDone(t, s, full, r.Header.Get("Content-Location")))
		var patientFile, obsFile string
		for _, f := range m.Output {
			if f.Type == "Patient" {
				patientFile = statusPath(t, s, f.URL)
			} else {
				obsFile = statusPath(t, s, f.URL)
			}
		}
		// Any valid token of the owner works, not only the kick-off's.
		again := bearer(token(t, s, keyA, "client-a", "system/*.read").AccessToken)
		s.Do(ts.Req{Method: "GET", Path: status, Auth: again}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: obsFile, Auth: again}).Expect(t, 200)
		// Root may too.
		s.Do(ts.Req{Method: "GET", Path: status}).Expect(t, 200)
		s.Do(ts.Req{Method: "GET", Path: patientFile}).Expect(t, 200)
		// Another client sees nothing, and cannot cancel.
		for _, req := range []ts.Req{{Method: "GET", Path: status}, {Method: "DELETE", Path: status}, {Method: "GET", Path: obsFile}} {
			req.Auth = other
			if d := s.Do(req).Expect(t, 404).Outcome(t); !strings.Contains(d, "no export") {
				t.Fatalf("%s %s by another client: %q", req.Method, req.Path, d)
			}
		}
		// No token at all.
		for _, p := range []string{status, obsFile} {
			r := s.Do(ts.Req{Method: "GET", Path: p, Auth: "none"}).Expect(t, 401)
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			r.Outcome(t)
		}
		// A token of the owner without Observation: no status (it must
		// cover every exported type), no Observation file, the Patient one.
		s.Do(ts.Req{Method: "GET", Path: status, Auth: narrow}).Expect(t, 403).Outcome(t)
		s.Do(ts.Req{Method: "GET", Path: obsFile, Auth: narrow}).Expect(t, 403).Outcome(t)
		got := s.Do(ts.Req{Method: "GET", Path: patientFile, Auth: narrow}).Expect(t, 200)
		if n := strings.Count(string(got.Body), "\n"); n != len(d["Patient"]) {
			t.Fatalf("patient file has %d lines", n)
		}
		// The owner cancels; then everything is gone.
		s.Do(ts.Req{Method: "DELETE", Path: status, Auth: again}).Expect(t, 202).Outcome(t)
		s.Do(ts.Req{Method: "GET", Path: status, Auth: full}).Expect(t, 404).Outcome(t)
		s.Do(ts.Req{Method: "GET", Path: patientFile, Auth: full}).Expect(t, 404).Outcome(t)
		s.Do(ts.Req{Method: "DELETE", Path: status, Auth: full}).Expect(t, 404).Outcome(t)
	})
}

// slowExport keeps exports running for seconds: five rows a page, a pause
// after each.
func slowExport(c *app.Config) {
	c.Export.PageSize = 5
	c.Export.PagePause = 200 * time.Millisecond
}

// TestExportWhileRunning: progress, polling etiquette, the per-client
// limit, and a consistent snapshot under concurrent writes.
func TestExportWhileRunning(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 2)
		r := kickoff(s, "", "GET", "/fhir/$export?_type=Patient,Observation,Condition", "", nil).Expect(t, 202)
		loc := r.Header.Get("Content-Location")
		if !strings.HasPrefix(loc, s.URL+"/fhir/$export-status/") {
			t.Fatalf("Content-Location %q", loc)
		}
		// Writes after the kick-off do not show in the export.
		obs := sortedKeys(d["Observation"])
		pat := sortedKeys(d["Patient"])[0]
		s.Do(ts.Req{Method: "PUT", Path: "/fhir/Patient/" + pat, Body: `{"resourceType":"Patient","id":"` + pat + `","gender":"other"}`}).Expect(t, 200)
		s.Do(ts.Req{Method: "DELETE", Path: "/fhir/Observation/" + obs[0]}).Expect(t, 204)
		s.Do(ts.Req{Method: "POST", Path: "/fhir/Condition", Body: `{"resourceType":"Condition","subject":{"reference":"Patient/` + pat + `"}}`}).Expect(t, 201)

		status := statusPath(t, s, loc)
		p := s.Do(ts.Req{Method: "GET", Path: status}).Expect(t, 202)
		if p.Header.Get("Retry-After") != "1" || p.Header.Get("X-Progress") == "" || len(p.Header.Get("X-Progress")) >= 100 {
			t.Fatalf("in-progress headers %v", p.Header)
		}
		fast := s.Do(ts.Req{Method: "GET", Path: status}).Expect(t, 429)
		if fast.Header.Get("Retry-After") != "1" || !strings.Contains(fast.Outcome(t), "too often") {
			t.Fatalf("429 %v %s", fast.Header, fast.Body)
		}
		// Two running exports per client at most (the test server's limit).
		second := kickoff(s, "", "GET", "/fhir/$export?_type=Patient", "", nil).Expect(t, 202).Header.Get("Content-Location")
		third := kickoff(s, "", "GET", "/fhir/$export?_type=Patient", "", nil).Expect(t, 429)
		if third.Header.Get("Retry-After") == "" || !strings.Contains(third.Outcome(t), "already runs 2 exports") {
			t.Fatalf("third kick-off %v %s", third.Header, third.Body)
		}
		s.Do(ts.Req{Method: "DELETE", Path: statusPath(t, s, second)}).Expect(t, 202)
		kickoff(s, "", "GET", "/fhir/$export?_type=Group", "", nil).Expect(t, 202)

		m := manifestOf(t, waitDone(t, s, "", loc))
		res, err := bulkFor(s, rootHTTP()).Download(context.Background(), m, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		assertExact(t, readFiles(t, res), d, []string{"Patient", "Observation", "Condition"})
	}, slowExport, func(c *app.Config) { c.Export.MaxPerClient = 2 })
}

// TestExportCancelRemovesFiles: DELETE stops a running export and removes
// its files; a finished export past its retention goes the same way.
func TestExportCancelRemovesFiles(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		dir := t.TempDir()
		s := ts.Start(t, newURL(t), fastExport, slowExport, func(c *app.Config) {
			c.Export.Dir = dir
			c.Export.FileMaxResources = 10
			c.Export.Retention = 3 * time.Second
		})
		seedStore(t, s.Store(), 2)
		// Cancel a running export once it has written files.
		loc := kickoff(s, "", "GET", "/fhir/$export", "", nil).Expect(t, 202).Header.Get("Content-Location")
		id := loc[strings.LastIndexByte(loc, '/')+1:]
		waitFor(t, "files of the running export", func() bool { return len(listDir(filepath.Join(dir, id))) > 0 })
		s.Do(ts.Req{Method: "DELETE", Path: statusPath(t, s, loc)}).Expect(t, 202)
		s.Do(ts.Req{Method: "GET", Path: statusPath(t, s, loc)}).Expect(t, 404)
		waitFor(t, "the cancelled export's removal", func() bool {
			_, err := s.Store().GetExportJob(context.Background(), id)
			return errors.Is(err, store.ErrNotFound) && len(listDir(filepath.Join(dir, id))) == 0 &&
				len(listDir(filepath.Join(dir, ".spool", id))) == 0
		})

		// A finished export expires after the retention.
		loc = kickoff(s, "", "GET", "/fhir/$export?_type=Patient", "", nil).Expect(t, 202).Header.Get("Content-Location")
		done := waitDone(t, s, "", loc)
		file := statusPath(t, s, manifestOf(t, done).Output[0].URL)
		s.Do(ts.Req{Method: "GET", Path: file}).Expect(t, 200)
		id = loc[strings.LastIndexByte(loc, '/')+1:]
		job, err := s.Store().GetExportJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		exp, err := http.ParseTime(done.Header.Get("Expires"))
		if err != nil || !exp.Equal(job.ExpiresAt.Truncate(time.Second)) || job.ExpiresAt.Sub(job.FinishedAt) != 3*time.Second {
			t.Fatalf("Expires %q for a job %+v", done.Header.Get("Expires"), job)
		}
		waitFor(t, "the expired export's removal", func() bool { return len(listDir(filepath.Join(dir, id))) == 0 })
		s.Do(ts.Req{Method: "GET", Path: statusPath(t, s, loc)}).Expect(t, 404)
		s.Do(ts.Req{Method: "GET", Path: file}).Expect(t, 404)
	})
}

func listDir(dir string) []os.DirEntry {
	es, _ := os.ReadDir(dir)
	return es
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExportFileDownloads: files are application/fhir+ndjson, gzipped for
// clients that accept it, plain otherwise, and both resume with Range.
func TestExportFileDownloads(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 2)
		loc := kickoff(s, "", "GET", "/fhir/$export?_type=Observation", "", nil).Expect(t, 202).Header.Get("Content-Location")
		done := waitDone(t, s, "", loc)
		if ct := done.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("manifest Content-Type %q", ct)
		}
		file := statusPath(t, s, manifestOf(t, done).Output[0].URL)

		plain := s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": "identity"}}).Expect(t, 200)
		if plain.Header.Get("Content-Type") != "application/fhir+ndjson" || plain.Header.Get("Content-Encoding") != "" ||
			strings.Count(string(plain.Body), "\n") != len(d["Observation"]) {
			t.Fatalf("plain download: %v", plain.Header)
		}
		zipped := s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": "gzip"}}).Expect(t, 200)
		if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("Content-Type") != "application/fhir+ndjson" {
			t.Fatalf("gzip download: %v", zipped.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped.Body))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, _ := io.ReadAll(zr)
		if !bytes.Equal(unzipped, plain.Body) {
			t.Fatal("the gzip download does not decompress to the plain one")
		}
		// Ranges of either representation, guarded by If-Range.
		for _, rep := range []struct {
			enc  string
			body []byte
			etag string
		}{{"identity", plain.Body, plain.Header.Get("ETag")}, {"gzip", zipped.Body, zipped.Header.Get("ETag")}} {
			part := s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": rep.enc,
				"Range": "bytes=100-", "If-Range": rep.etag}}).Expect(t, 206)
			if !bytes.Equal(part.Body, rep.body[100:]) {
				t.Fatalf("%s: Range 100- gives %d bytes, want %d", rep.enc, len(part.Body), len(rep.body)-100)
			}
			stale := s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": rep.enc,
				"Range": "bytes=100-", "If-Range": `"stale"`}}).Expect(t, 200)
			if !bytes.Equal(stale.Body, rep.body) {
				t.Fatalf("%s: a stale If-Range must give the whole file", rep.enc)
			}
		}
		if plain.Header.Get("ETag") == zipped.Header.Get("ETag") {
			t.Fatal("both representations share an ETag")
		}
		s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": "identity", "Range": "bytes=999999-"}}).Expect(t, 416)
		s.Do(ts.Req{Method: "POST", Path: file}).Expect(t, 405).Outcome(t)
		s.Do(ts.Req{Method: "GET", Path: file + "x"}).Expect(t, 404).Outcome(t)
	})
}

// TestExportCapabilityStatement: the IG's canonical URLs (E2.8).
func TestExportCapabilityStatement(t *testing.T) {
	s := ts.Start(t, testdb.SQLiteURL(t))
	cs := s.Do(ts.Req{Method: "GET", Path: "/fhir/metadata", Auth: "none"}).Expect(t, 200)
	var c struct {
		Instantiates []string
		Rest         []struct {
			Operation []struct{ Name, Definition string }
			Resource  []struct {
				Type      string
				Operation []struct{ Name, Definition string }
			}
		}
	}
	json.Unmarshal(cs.Body, &c)
	if !slices.Contains(c.Instantiates, "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data") {
		t.Fatalf("instantiates %v", c.Instantiates)
	}
	want := map[string]string{
		"":        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
		"Patient": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
		"Group":   "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
	}
	got := map[string]string{}
	for _, op := range c.Rest[0].Operation {
		if op.Name == "export" {
			got[""] = op.Definition
		}
	}
	for _, r := range c.Rest[0].Resource {
		for _, op := range r.Operation {
			if op.Name == "export" {
				got[r.Type] = op.Definition
			}
		}
	}
	if len(got) != 3 || got[""] != want[""] || got["Patient"] != want["Patient"] || got["Group"] != want["Group"] {
		t.Fatalf("export operations %v", got)
	}
}

// fieldMatcher is a stand-in for the search engine at the QueryMatcher
// seam: it understands queries of top-level string elements, e.g.
// gender=female (values ORed by commas, parameters ANDed, queries ORed).
type fieldMatcher struct{}

func (fieldMatcher) Compile(_ context.Context, typ string, qs []url.Values) (export.Matcher, error) {
	for _, q := range qs {
		for k := range q {
			if k != "gender" && k != "status" {
				return nil, fhir.Invalid("fieldMatcher: unknown parameter %s on %s", k, typ)
			}
		}
	}
	return fieldMatch(qs), nil
}

type fieldMatch []url.Values

func (m fieldMatch) Match(_ context.Context, body []byte) (bool, error) {
	var r map[string]any
	if err := json.Unmarshal(body, &r); err != nil {
		return false, err
	}
	for _, q := range m {
		all := true
		for k, vs := range q {
			for _, v := range vs {
				got, _ := r[k].(string)
				all = all && slices.Contains(strings.Split(v, ","), got)
			}
		}
		if all {
			return true, nil
		}
	}
	return false, nil
}

// TestExportFilters: _typeFilter and query-restricted scopes, through a
// QueryMatcher, decide which resources an export holds; both apply
// together.
func TestExportFilters(t *testing.T) {
	exportServers(t, func(t *testing.T, s *ts.Server) {
		d := seedStore(t, s.Store(), 8)
		byGender := map[string][]string{}
		for id, body := range d["Patient"] {
			var p struct{ Gender string }
			json.Unmarshal(body, &p)
			byGender[p.Gender] = append(byGender[p.Gender], id)
		}
		if len(byGender["female"]) == 0 || len(byGender["male"]) == 0 {
			t.Fatalf("the data set needs both genders: %v", byGender)
		}
		for _, ids := range byGender {
			sort.Strings(ids)
		}
		c := bulkFor(s, rootHTTP())
		_, got := exported(t, c, bulk.Request{Types: []string{"Patient", "Encounter"}, TypeFilters: []string{"Patient?gender=female"}})
		if ids := idsOf(got["Patient"]); !slices.Equal(ids, byGender["female"]) || len(got["Encounter"]) != len(d["Encounter"]) {
			t.Fatalf("_typeFilter gender=female gave %v", ids)
		}
		_, got = exported(t, c, bulk.Request{Types: []string{"Patient"}, TypeFilters: []string{"Patient?gender=female", "Patient?gender=male"}})
		if len(got["Patient"]) != len(d["Patient"]) {
			t.Fatalf("two _typeFilters on a type are ORed: %d patients", len(got["Patient"]))
		}
		kickoff(s, "", "GET", "/fhir/$export?_type=Patient&_typeFilter=Patient%3Fbirthdate%3D2000", "", nil).Expect(t, 400)

		key := backendClient(t, s, "restricted", []string{"system/*.read"}, false)
		hc := smartHTTP(t, s, key, "restricted", "system/Patient.rs?gender=male system/Encounter.rs")
		_, got = exported(t, bulkFor(s, hc), bulk.Request{Types: []string{"Patient", "Encounter"}})
		if ids := idsOf(got["Patient"]); !slices.Equal(ids, byGender["male"]) || len(got["Encounter"]) != len(d["Encounter"]) {
			t.Fatalf("scope gender=male gave %v", ids)
		}
		_, got = exported(t, bulkFor(s, hc), bulk.Request{Types: []string{"Patient"}, TypeFilters: []string{"Patient?gender=female"}})
		if len(got["Patient"]) != 0 {
			t.Fatalf("scope gender=male and _typeFilter gender=female gave %v", idsOf(got["Patient"]))
		}
	}, func(c *app.Config) { c.Export.Matcher = fieldMatcher{} })
}
