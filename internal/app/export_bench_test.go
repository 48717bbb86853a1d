package app_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

// BenchmarkExport1M exports a store of about a million resources (the
// synthetic payer data set of 12,050 patients, 1,000,000 ± a few hundred
// resources) at system level to local NDJSON files, with the server in a
// child process, and reports the wall time from kick-off to manifest and
// the server's peak resident memory (VmHWM). It then downloads every file
// and checks the counts.
//
//	go test -run '^$' -bench BenchmarkExport1M -benchtime 1x -timeout 1h ./internal/app/
//
// FHIRGATE_EXPORT_BENCH_DB=sqlite:/path/bench.db (or postgres://...) keeps
// the loaded database for the next runs; FHIRGATE_EXPORT_BENCH_PATIENTS
// changes the size.
func BenchmarkExport1M(b *testing.B) {
	patients := 12_050
	if v := os.Getenv("FHIRGATE_EXPORT_BENCH_PATIENTS"); v != "" {
		patients, _ = strconv.Atoi(v)
	}
	dbURL := os.Getenv("FHIRGATE_EXPORT_BENCH_DB")
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(b.TempDir(), "bench.db")
	}
	want := benchData(b, dbURL, patients)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dataDir := b.TempDir()
		h := startHelper(b, helperConfig{Addr: freeAddr(b), DB: dbURL, DataDir: dataDir,
			Export: app.ExportConfig{PollInterval: 100 * time.Millisecond}}, filepath.Join(dataDir, "server.log"))
		c := bulkAt(h.URL)
		c.Poll = bulk.PollPolicy{Initial: 100 * time.Millisecond, Min: 100 * time.Millisecond, Max: 200 * time.Millisecond}
		ctx := context.Background()
		start := time.Now()
		job, err := c.Kickoff(ctx, bulk.Request{})
		if err != nil {
			b.Fatal(err)
		}
		m, err := job.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		peak := vmHWM(b, h.cmd.Process.Pid)
		b.StopTimer()
		var n int64
		for _, f := range m.Output {
			n += *f.Count
		}
		if n != want {
			b.Fatalf("the manifest counts %d resources, the store holds %d", n, want)
		}
		res, err := c.Download(ctx, m, filepath.Join(dataDir, "download"))
		if err != nil {
			b.Fatal(err)
		}
		peakAfterDownload := vmHWM(b, h.cmd.Process.Pid)
		h.cmd.Process.Signal(syscall.SIGTERM)
		<-h.done
		b.ReportMetric(elapsed.Seconds(), "s/export")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "resources/s")
		b.ReportMetric(float64(peak)/1024, "MB-peak-RSS")
		b.ReportMetric(float64(peakAfterDownload)/1024, "MB-peak-RSS-with-download")
		b.ReportMetric(float64(res.Bytes)/(1<<20), "MB-ndjson")
		b.Logf("%d resources in %d files, %.0f MB NDJSON: export %v, server peak RSS %d MB (%d MB after the download)",
			n, len(m.Output), float64(res.Bytes)/(1<<20), elapsed.Round(time.Millisecond), peak/1024, peakAfterDownload/1024)
		b.StartTimer()
	}
}

// benchData loads the data set of n patients into dbURL unless it is there
// already, and returns the number of resources.
func benchData(b *testing.B, dbURL string, n int) int64 {
	b.Helper()
	counts, err := seed.Counts(seed.Options{Patients: n, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var want int64
	for _, c := range counts {
		want += int64(c)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if have := countResources(b, dbURL); have == want {
		return want
	} else if have != 0 {
		b.Fatalf("%s holds %d resources, want an empty database or %d", dbURL, have, want)
	}
	start := time.Now()
	w := loader.NewStoreWriter(st, 0)
	err = seed.Generate(ctx, seed.Options{Patients: n, Seed: 1}, func(_, _ string, body []byte) error {
		r, err := resource.Parse(body)
		if err != nil {
			return err
		}
		return w.Add(ctx, r)
	})
	if err == nil {
		err = w.Flush(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d resources in %v", w.Written(), time.Since(start).Round(time.Second))
	return want
}

func countResources(b *testing.B, dbURL string) int64 {
	driver, dsn := "pgx", dbURL
	if p, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		driver, dsn = "sqlite", p
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT COUNT(*) FROM resources").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// vmHWM is the peak resident set of a process in KiB (Linux).
func vmHWM(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("peak RSS needs /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
