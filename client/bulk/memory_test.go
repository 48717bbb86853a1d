package bulk_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/client/smarttest"
)

// manifestFor kicks off and waits, so that what follows measures only the
// download.
func manifestFor(t testing.TB, e *env, req bulk.Request) *bulk.Manifest {
	t.Helper()
	job, err := e.c.Kickoff(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := job.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDownloadMemoryIsBounded downloads 32 MB and checks that far less
// than that was allocated: the files stream through fixed buffers.
func TestDownloadMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 32 MB")
	}
	e := setup(t, smarttest.Options{})
	e.srv.GenerateResources("Claim", 32_000, 1000)
	e.srv.Set(func(b *smarttest.Behavior) { b.MaxLinesPerFile = 8000 })
	m := manifestFor(t, e, bulk.Request{Types: []string{"Claim"}})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := e.c.Download(context.Background(), m, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if res.Bytes < 31_000_000 {
		t.Fatalf("downloaded only %d bytes", res.Bytes)
	}
	t.Logf("downloaded %d MB, allocated %d kB in all (client and in-process server)", res.Bytes>>20, alloc>>10)
	if alloc > 8<<20 {
		t.Errorf("allocated %d MB to download %d MB: the download is buffered, not streamed", alloc>>20, res.Bytes>>20)
	}
}

func benchmarkDownload(b *testing.B, gzip bool) {
	e := setup(b, smarttest.Options{})
	e.srv.GenerateResources("Claim", 20_000, 1000)
	e.srv.Set(func(bh *smarttest.Behavior) { bh.Gzip = gzip; bh.MaxLinesPerFile = 5000 })
	m := manifestFor(b, e, bulk.Request{Types: []string{"Claim"}})
	b.SetBytes(20_000 * 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.c.Download(context.Background(), m, e.dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDownload measures the download of 20 MB of NDJSON in four
// files over loopback, counted and written to disk.
func BenchmarkDownload(b *testing.B) { benchmarkDownload(b, false) }

// BenchmarkDownloadGzip is BenchmarkDownload with Content-Encoding: gzip.
func BenchmarkDownloadGzip(b *testing.B) { benchmarkDownload(b, true) }
