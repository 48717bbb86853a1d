package loader_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

func TestToStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		st := openStore(t, newURL(t))
		dir := t.TempDir()
		// Plain, gzip by name, gzip without the name (found by its magic
		// number), a byte order mark, CRLF line ends, blank lines, and a
		// file without a final newline.
		obs := `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}` + "\r\n\r\n" +
			`{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"y"}}`
		files := []string{
			writeFile(t, dir, "Patient.ndjson", "\ufeff"+patients("p", 25), false),
			writeFile(t, dir, "More.ndjson.gz", patients("q", 1200), true),
			writeFile(t, dir, "obs.data", obs, true),
			writeFile(t, dir, "Empty.ndjson", "\n\n", false),
		}
		var total int64
		for _, f := range files {
			fi, _ := os.Stat(f)
			total += fi.Size()
		}
		var pl progressLog
		res, err := loader.ToStore(context.Background(), st, sources(t, files...), pl.opts(loader.Options{BatchSize: 100, Workers: 3}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Resources != 1227 || res.Invalid != 0 || res.Bytes != total || len(res.Files) != 4 {
			t.Fatalf("result %+v", res)
		}
		for i, want := range []int64{25, 1200, 2, 0} {
			if f := res.Files[i]; f.Name != files[i] || f.Resources != want {
				t.Errorf("file %d: %+v, want %d resources", i, f, want)
			}
		}
		pl.check(t, res, total)
		live, versions := countLive(t, st)
		if live["Patient"] != 1225 || live["Observation"] != 2 || versions != 1227 {
			t.Fatalf("stored %v, %d versions", live, versions)
		}
		v, err := st.Read(context.Background(), "Patient", "p-0")
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal(v.Body, &p); err != nil || p["id"] != "p-0" || v.VersionID != 1 {
			t.Fatalf("stored %s (%v)", v.Body, err)
		}
	})
}

// TestToStoreOrder: a resource that appears twice ends as the later line,
// across batch and chunk boundaries, and a second load adds versions.
func TestToStoreOrder(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		st := openStore(t, newURL(t))
		dir := t.TempDir()
		content := patients("p", 700) + `{"resourceType":"Patient","id":"p-3","active":false}` + "\n" +
			patients("x", 10) + `{"resourceType":"Patient","id":"p-3","active":true}` + "\n"
		f := writeFile(t, dir, "Patient.ndjson", content, false)
		for _, batch := range []int{1, 7, 1000} {
			if _, err := loader.ToStore(context.Background(), st, sources(t, f), loader.Options{BatchSize: batch, Workers: 4}); err != nil {
				t.Fatal(err)
			}
		}
		v, err := st.Read(context.Background(), "Patient", "p-3")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(v.Body), `"active":true`) || v.VersionID != 9 {
			t.Fatalf("p-3 is version %d: %s", v.VersionID, v.Body)
		}
		live, versions := countLive(t, st)
		if live["Patient"] != 710 || versions != 3*712 {
			t.Fatalf("stored %v, %d versions", live, versions)
		}
	})
}

// TestToStoreInvalid: each kind of invalid line stops the load with the
// file and line, after committing the batches before it; SkipInvalid
// counts it instead.
func TestToStoreInvalid(t *testing.T) {
	good := patients("ok", 3)
	for _, tc := range []struct {
		name, line string
		maxLine    int
		want       string
	}{
		{"not JSON", `{"resourceType":"Patient",`, 0, "bad.ndjson:5: not a FHIR resource: body is not valid JSON: unexpected end of JSON input"},
		{"not an object", `[1,2]`, 0, "bad.ndjson:5: not a FHIR resource: a FHIR resource must be a JSON object"},
		{"no resourceType", `{"id":"a"}`, 0, "bad.ndjson:5: not a FHIR resource: resourceType is missing: a FHIR resource is a JSON object with a resourceType member"},
		{"unknown type", `{"resourceType":"Spaceship","id":"a"}`, 0, `bad.ndjson:5: resourceType "Spaceship" is not a FHIR R4 resource type`},
		{"no id", `{"resourceType":"Patient"}`, 0, "bad.ndjson:5: the resource has no id: load keeps each resource's id (PUT Type/id), so every line needs one"},
		{"bad id", `{"resourceType":"Patient","id":"a b"}`, 0, `bad.ndjson:5: id "a b" is not a valid FHIR id (1 to 64 characters from A-Z a-z 0-9 - .)`},
		{"null member", `{"resourceType":"Patient","id":"a","active":null}`, 0, `bad.ndjson:5: not a FHIR resource: member "active" is null: FHIR JSON leaves absent elements out`},
		{"too long", `{"resourceType":"Patient","id":"long","text":{"div":"` + strings.Repeat("x", 300) + `"}}`, 200, "bad.ndjson:5: the line is longer than 200 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, testdb.SQLiteURL(t))
			dir := t.TempDir()
			// line 4 is blank: line numbers count every line
			f := writeFile(t, dir, "bad.ndjson", good+"\n"+tc.line+"\n"+patients("after", 2), false)
			name := filepath.Join(dir, "bad.ndjson")
			opts := loader.Options{BatchSize: 2, MaxLineBytes: tc.maxLine}
			res, err := loader.ToStore(context.Background(), st, sources(t, f), opts)
			want := strings.ReplaceAll(tc.want, "bad.ndjson", name)
			if err == nil || err.Error() != want {
				t.Fatalf("error %v\nwant  %s", err, want)
			}
			var le *loader.LineError
			if !errors.As(err, &le) || le.Line != 5 || le.File != name {
				t.Fatalf("error %#v is not the LineError of line 5", err)
			}
			// Every line before it was committed.
			if res.Resources != 3 {
				t.Fatalf("committed %d resources before the bad line, want 3", res.Resources)
			}
			st2 := openStore(t, testdb.SQLiteURL(t))
			var pl progressLog
			opts.SkipInvalid = true
			res, err = loader.ToStore(context.Background(), st2, sources(t, f), pl.opts(opts))
			if err != nil {
				t.Fatal(err)
			}
			if res.Resources != 5 || res.Invalid != 1 || res.Files[0].Invalid != 1 {
				t.Fatalf("result %+v", res)
			}
			if len(pl.invalid) != 1 || pl.invalid[0] != want {
				t.Fatalf("OnInvalid got %q", pl.invalid)
			}
		})
	}
}

// TestToStoreLargeLine: a resource bigger than the read buffer and the
// chunk size loads whole.
func TestToStoreLargeLine(t *testing.T) {
	st := openStore(t, testdb.SQLiteURL(t))
	big := `{"resourceType":"Binary","id":"big","contentType":"text/plain","data":"` + strings.Repeat("QUJD", 900_000) + `"}`
	f := writeFile(t, t.TempDir(), "Binary.ndjson.gz", patients("a", 3)+big+"\n"+patients("b", 3), true)
	res, err := loader.ToStore(context.Background(), st, sources(t, f), loader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resources != 7 {
		t.Fatalf("result %+v", res)
	}
	v, err := st.Read(context.Background(), "Binary", "big")
	if err != nil || len(v.Body) < 3_600_000 {
		t.Fatalf("big: %v, %d bytes", err, len(v.Body))
	}

	// Over the limit, it is an invalid line, skipped whole.
	st = openStore(t, testdb.SQLiteURL(t))
	_, err = loader.ToStore(context.Background(), st, sources(t, f), loader.Options{MaxLineBytes: 1 << 20})
	if want := f + ":4: the line is longer than 1048576 bytes"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	res, err = loader.ToStore(context.Background(), st, sources(t, f), loader.Options{MaxLineBytes: 1 << 20, SkipInvalid: true})
	if err != nil || res.Resources != 6 || res.Invalid != 1 {
		t.Fatalf("skipping the long line: %+v, %v", res, err)
	}
}

func TestToStoreBadInput(t *testing.T) {
	st := openStore(t, testdb.SQLiteURL(t))
	dir := t.TempDir()
	good := writeFile(t, dir, "a.ndjson", patients("a", 3), false)
	gz := writeFile(t, dir, "b.ndjson.gz", patients("b", 2000), true)
	data, _ := os.ReadFile(gz)
	corrupt := filepath.Join(dir, "c.ndjson.gz")
	os.WriteFile(corrupt, data[:len(data)/2], 0o644)
	_, err := loader.ToStore(context.Background(), st, sources(t, good, corrupt), loader.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), corrupt+": after line ") || !strings.HasSuffix(err.Error(), "unexpected EOF") {
		t.Fatalf("truncated gzip: %v", err)
	}

	if _, err := loader.Files(filepath.Join(dir, "missing.ndjson")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	empty := t.TempDir()
	if _, err := loader.Files(empty); err == nil || !strings.Contains(err.Error(), "holds no .ndjson or .ndjson.gz file") {
		t.Fatalf("empty dir: %v", err)
	}
	srcs, err := loader.Files(dir)
	if err != nil || len(srcs) != 3 || srcs[0].Name != good || srcs[1].Name != gz {
		t.Fatalf("dir sources %+v, %v", srcs, err)
	}
}

func TestToStoreCancel(t *testing.T) {
	st := openStore(t, testdb.SQLiteURL(t))
	f := writeFile(t, t.TempDir(), "p.ndjson", patients("p", 20000), false)
	ctx, cancel := context.WithCancel(context.Background())
	opts := loader.Options{BatchSize: 100, OnProgress: func(p loader.Progress) {
		if p.Resources >= 1000 {
			cancel()
		}
	}}
	res, err := loader.ToStore(ctx, st, sources(t, f), opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if res.Resources < 1000 || res.Resources >= 20000 {
		t.Fatalf("loaded %d before the cancel", res.Resources)
	}
}
