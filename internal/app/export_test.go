package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/internal/app"
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

var _ = filepath.Join
