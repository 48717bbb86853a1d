package seed

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteNDJSONMatchesGenerate(t *testing.T) {
	opts := Options{Patients: 15, Seed: 21}
	var want = map[string][]byte{}
	err := Generate(context.Background(), opts, func(typ, _ string, r []byte) error {
		want[typ] = append(append(want[typ], r...), '\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		counts, err := WriteNDJSON(context.Background(), dir, opts, gz)
		if err != nil {
			t.Fatal(err)
		}
		wantCounts, _ := Counts(opts)
		if len(counts) != len(wantCounts) {
			t.Fatalf("counts %v, want %v", counts, wantCounts)
		}
		for typ, body := range want {
			name := filepath.Join(dir, typ+".ndjson")
			if gz {
				name += ".gz"
			}
			got := readFile(t, name, gz)
			if !bytes.Equal(got, body) {
				t.Fatalf("%s differs from Generate's output", name)
			}
			if n := bytes.Count(got, []byte{'\n'}); n != wantCounts[typ] {
				t.Fatalf("%s: %d lines, Counts says %d", name, n, wantCounts[typ])
			}
		}
		assertNoTemps(t, dir)
	}
}

func readFile(t *testing.T, name string, gz bool) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestDirWriterRefusesNonFHIRTypes(t *testing.T) {
	d, err := NewDirWriter(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	for _, typ := range []string{"../Patient", "patient", "", "Resource", "Patient/x"} {
		err := d.Write(typ, "1", []byte(`{}`))
		if err == nil || err.Error() != `seed: "`+typ+`" is not a FHIR R4 resource type` {
			t.Errorf("Write(%q): %v", typ, err)
		}
	}
}

func TestDirWriterAbortPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := NewDirWriter(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write("Patient", "a", []byte(`{"resourceType":"Patient","id":"a"}`)); err != nil {
		t.Fatal(err)
	}
	d.Abort()
	if got := readFile(t, filepath.Join(dir, "Patient.ndjson"), false); string(got) != "old\n" {
		t.Fatalf("Abort replaced the existing file: %q", got)
	}
	assertNoTemps(t, dir)
	if err := d.Write("Encounter", "b", []byte(`{}`)); err == nil || err.Error() != "seed: write after Close" {
		t.Fatalf("Write after Abort: %v", err)
	}
}

func TestDirWriterCloseReplacesFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := NewDirWriter(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write("Patient", "a", []byte(`{"id":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "Patient.ndjson"), false); string(got) != "{\"id\":\"a\"}\n" {
		t.Fatalf("file holds %q", got)
	}
	if files := d.Files(); len(files) != 1 || files[0] != filepath.Join(dir, "Patient.ndjson") {
		t.Fatalf("Files() = %v", files)
	}
}

func TestWriteNDJSONCancelledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteNDJSON(ctx, dir, Options{Patients: 100, Seed: 1}, true); err != context.Canceled {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("cancelled run left %v", entries)
	}
}

// A full disk surfaces as an error, plain or compressed (/dev/full fails
// every write with ENOSPC).
func TestWriteErrorsSurface(t *testing.T) {
	for _, gz := range []bool{false, true} {
		f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skip("no /dev/full here")
		}
		tf := &typeFile{f: f, final: "Observation.ndjson"}
		if gz {
			tf.gz = startCompressor(f)
		}
		var werr error
		for i := 0; i < 20 && werr == nil; i++ {
			tf.buf = append(tf.buf, bytes.Repeat([]byte("x"), chunkSize)...)
			werr = tf.flush()
		}
		ferr := tf.finish()
		if werr == nil && ferr == nil {
			t.Fatalf("gzip %v: writing to /dev/full reported no error", gz)
		}
		if err := errors.Join(werr, ferr); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("gzip %v: error %v, want ENOSPC", gz, err)
		}
	}
}
