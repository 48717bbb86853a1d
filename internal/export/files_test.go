package export

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/store"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		h    string
		want bool
	}{
		{"", false}, {"gzip", true}, {"deflate, gzip;q=0.5", true}, {"GZIP", true}, {"x-gzip", true}, {"*", true},
		{"gzip;q=0", false}, {"identity", false}, {"br, deflate", false}, {"gzip; q=0.0", false},
	} {
		var vals []string
		if tc.h != "" {
			vals = []string{tc.h}
		}
		if got := acceptsGzip(vals); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v", tc.h, got)
		}
	}
}

func TestByteRange(t *testing.T) {
	const etag = `"e"`
	for _, tc := range []struct {
		name, rng, ifRange string
		start, length      int64
		partial            bool
		unsatisfiable      bool
	}{
		{name: "none", length: 100},
		{name: "from", rng: "bytes=10-", start: 10, length: 90, partial: true},
		{name: "span", rng: "bytes=10-19", start: 10, length: 10, partial: true},
		{name: "past the end", rng: "bytes=90-200", start: 90, length: 10, partial: true},
		{name: "suffix", rng: "bytes=-30", start: 70, length: 30, partial: true},
		{name: "suffix longer than the file", rng: "bytes=-300", start: 0, length: 100, partial: true},
		{name: "several ranges give all", rng: "bytes=1-2,5-6", length: 100},
		{name: "other unit gives all", rng: "items=1-2", length: 100},
		{name: "matching If-Range", rng: "bytes=10-", ifRange: etag, start: 10, length: 90, partial: true},
		{name: "stale If-Range gives all", rng: "bytes=10-", ifRange: `"old"`, length: 100},
		{name: "start past the end", rng: "bytes=100-", unsatisfiable: true},
		{name: "backwards", rng: "bytes=20-10", unsatisfiable: true},
		{name: "garbage", rng: "bytes=x-", unsatisfiable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.rng != "" {
				r.Header.Set("Range", tc.rng)
			}
			if tc.ifRange != "" {
				r.Header.Set("If-Range", tc.ifRange)
			}
			start, length, partial, err := byteRange(r, etag, 100)
			if tc.unsatisfiable {
				if fe := fhir.AsError(err); fe == nil || fe.Status != http.StatusRequestedRangeNotSatisfiable {
					t.Fatalf("error %v, want 416", err)
				}
				return
			}
			if err != nil || start != tc.start || length != tc.length || partial != tc.partial {
				t.Fatalf("= %d %d %v %v; want %d %d %v", start, length, partial, err, tc.start, tc.length, tc.partial)
			}
		})
	}
}

// TestServeIdentity: ranges of the decompressed NDJSON of a multi-member
// gzip file.
func TestServeIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.gz")
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	w, _, err := newPartWriter(gz, path, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; i < 50; i++ {
		line := []byte(`{"resourceType":"Basic","id":"b` + strings.Repeat("x", i) + `"}`)
		w.write(line)
		want.Write(line)
		want.WriteByte('\n')
		if i%7 == 0 {
			w.sync() // a new gzip member
		}
	}
	size, err := w.close()
	if err != nil {
		t.Fatal(err)
	}
	f := &store.ExportFile{Key: "k", Size: size, RawSize: int64(want.Len())}
	for _, rng := range []string{"", "bytes=0-", "bytes=100-", "bytes=5-44", "bytes=-17"} {
		obj, _ := (&LocalStorage{Dir: dir}).Open(t.Context(), "f.gz")
		r := httptest.NewRequest("GET", "/", nil)
		if rng != "" {
			r.Header.Set("Range", rng)
		}
		rec := httptest.NewRecorder()
		if err := serveIdentity(rec, r, f, obj); err != nil {
			t.Fatal(err)
		}
		obj.Close()
		start, length, _, _ := byteRange(r, rec.Header().Get("ETag"), f.RawSize)
		if got := rec.Body.String(); got != want.String()[start:start+length] {
			t.Fatalf("Range %q: got %q", rng, got)
		}
		wantStatus := http.StatusPartialContent
		if rng == "" {
			wantStatus = http.StatusOK
		}
		if rec.Code != wantStatus || rec.Header().Get("Content-Length") != strconv.FormatInt(length, 10) {
			t.Fatalf("Range %q: status %d, headers %v", rng, rec.Code, rec.Header())
		}
	}
}

// TestPartWriterResume: a part resumed from the durable prefix of a
// crashed writer's spool reads back as every line once, whatever the
// crashed writer left after its last sync.
func TestPartWriterResume(t *testing.T) {
	dir := t.TempDir()
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	old := filepath.Join(dir, "old")
	w, _, err := newPartWriter(gz, old, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"a", "b", "c"} {
		w.write([]byte(l))
	}
	durable, err := w.sync()
	if err != nil {
		t.Fatal(err)
	}
	// Lines after the checkpoint, half flushed, then a crash.
	w.write([]byte("lost-1"))
	w.write([]byte("lost-2"))
	w.bw.Flush()
	w.abort()

	gz2, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	nw, ok, err := newPartWriter(gz2, filepath.Join(dir, "new"), old, durable)
	if err != nil || !ok {
		t.Fatalf("resume = %v, %v", ok, err)
	}
	nw.write([]byte("d"))
	if _, err := nw.close(); err != nil {
		t.Fatal(err)
	}
	got := gunzip(t, filepath.Join(dir, "new"))
	if got != "a\nb\nc\nd\n" {
		t.Fatalf("resumed part holds %q", got)
	}
	// A spool shorter than the checkpoint (or none) means starting over.
	if _, ok, err := newPartWriter(gz2, filepath.Join(dir, "x"), old, durable+1<<20); ok || err != nil {
		t.Fatalf("resume from a short spool = %v, %v", ok, err)
	}
	if _, ok, err := newPartWriter(gz2, filepath.Join(dir, "y"), filepath.Join(dir, "missing"), 10); ok || err != nil {
		t.Fatalf("resume from a missing spool = %v, %v", ok, err)
	}
}

func newGzip() *gzip.Writer {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return gz
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLocalStorage(t *testing.T) {
	l, err := NewLocalStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	spool := filepath.Join(l.Dir, "spool")
	os.WriteFile(spool, []byte("data"), 0o600)
	if err := l.Put(ctx, "job/a.gz", spool); err != nil {
		t.Fatal(err)
	}
	o, err := l.Open(ctx, "job/a.gz")
	if err != nil || o.Size() != 4 {
		t.Fatalf("open = %v, %v", o, err)
	}
	o.Close()
	for _, bad := range []string{"../x", "/etc/passwd", "."} {
		if _, err := l.Open(ctx, bad); err == nil || err == ErrNotExist {
			t.Fatalf("open %q: %v", bad, err)
		}
	}
	if err := l.DeletePrefix(ctx, "job/"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, "job/a.gz"); err != ErrNotExist {
		t.Fatalf("after delete: %v", err)
	}
}
