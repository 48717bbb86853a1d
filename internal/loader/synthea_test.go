package loader_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// syntheaDir is the shared synthea-100 data set beside the repository
// (never copied into it).
func syntheaDir(tb testing.TB) string {
	tb.Helper()
	dir := syntheaPath()
	if dir == "" {
		tb.Skip("synthea-100 not found beside the repository (../shared/data/synthea-100)")
	}
	return dir
}

// syntheaPath is the directory of synthea-100, or "" when it is absent.
func syntheaPath() string {
	dir := filepath.Join("..", "..", "..", "shared", "data", "synthea-100")
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// lineCounts counts the non-blank lines of each file of dir per resource
// type (the file name before the first dot).
func lineCounts(tb testing.TB, dir string) (map[string]int, int) {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.ndjson.gz"))
	want, total := map[string]int{}, 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 64<<20)
		typ, _, _ := strings.Cut(filepath.Base(p), ".")
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) > 0 {
				want[typ]++
				total++
			}
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		f.Close()
	}
	return want, total
}

func checkCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("%s: %d stored, %d in the files", typ, got[typ], n)
		}
	}
	for typ := range got {
		if _, ok := want[typ]; !ok {
			t.Errorf("%s stored but not in the files", typ)
		}
	}
}

func TestSyntheaToStore(t *testing.T) {
	dir := syntheaDir(t)
	want, total := lineCounts(t, dir)
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		st := openStore(t, newURL(t))
		res, err := loader.ToStore(context.Background(), st, sources(t, dir), loader.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d resources in %s: %.0f resources/s", res.Resources, res.Elapsed.Round(time.Millisecond), res.Rate())
		if res.Resources != int64(total) || len(res.Files) != len(want) {
			t.Fatalf("loaded %d resources from %d files, want %d from %d", res.Resources, len(res.Files), total, len(want))
		}
		live, versions := countLive(t, st)
		checkCounts(t, live, want)
		if versions != total {
			t.Fatalf("%d versions for %d resources", versions, total)
		}
	})
}

// TestSyntheaToServer loads synthea-100 over the FHIR API and checks the
// counts on the server, through its store and its REST API.
func TestSyntheaToServer(t *testing.T) {
	dir := syntheaDir(t)
	if testing.Short() {
		t.Skip("loads 38,000 resources over HTTP")
	}
	want, total := lineCounts(t, dir)
	s := ts.Start(t, testdb.SQLiteURL(t))
	key := register(t, s, "loader", []string{"system/*.cruds"}, 300)
	src, err := client.NewTokenSource(client.Config{ClientID: "loader", Key: key, Scopes: []string{"system/*.cu"}, FHIRBaseURL: s.URL + "/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := loader.ToServer(context.Background(), loader.Server{BaseURL: s.URL + "/fhir", HTTP: src.Client()}, sources(t, dir), loader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d resources in %s: %.0f resources/s", res.Resources, res.Elapsed.Round(time.Millisecond), res.Rate())
	if res.Resources != int64(total) {
		t.Fatalf("loaded %d resources, want %d", res.Resources, total)
	}
	live, _ := countLive(t, s.Store())
	checkCounts(t, live, want)
	// Each type's first resource reads back over the API.
	for _, typ := range []string{"Patient", "Observation", "Claim", "Group"} {
		f, _ := os.Open(filepath.Join(dir, typ+".ndjson.gz"))
		zr, _ := gzip.NewReader(f)
		line, _ := bufio.NewReaderSize(zr, 1<<20).ReadBytes('\n')
		f.Close()
		_, rest, _ := bytes.Cut(line, []byte(`"id":"`))
		id, _, _ := bytes.Cut(rest, []byte(`"`))
		s.Do(ts.Req{Method: "GET", Path: "/fhir/" + typ + "/" + string(id)}).Expect(t, 200)
	}
}
