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
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/seed"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

// BenchmarkExport1M exports a store of a million resources (the synthetic
// payer data set of 12,195 patients: 1,000,282 resources) at system level
// to local NDJSON files, with the server in a child process, and reports the wall time from kick-off to manifest and
// the server's peak resident memory (VmHWM). It then downloads every file
// and checks the counts.
//
//	go test -run '^$' -bench BenchmarkExport1M -benchtime 1x -timeout 1h ./internal/app/
//
// FHIRGATE_EXPORT_BENCH_DB=sqlite:/path/bench.db (or postgres://...) keeps
// the loaded database for the next runs; FHIRGATE_EXPORT_BENCH_PATIENTS
// changes the size.
func BenchmarkExport1M(b *testing.B) {
	patients := 12_195
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
	written, err := rawLoad(ctx, dbURL, n)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d resources in %v", written, time.Since(start).Round(time.Second))
	return want
}

// rawLoad writes the data set straight into the resources and history
// tables, as the store would with one version per resource, but without
// the search index, which the export does not read and which would make
// loading a million resources take many minutes.
func rawLoad(ctx context.Context, dbURL string, n int) (int64, error) {
	driver, dsn := "pgx", dbURL
	if p, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		driver, dsn = "sqlite", p
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rebind := func(q string) string {
		if driver == "sqlite" {
			return q
		}
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", "$"+strconv.Itoa(i), 1)
		}
		return q
	}
	insRes := rebind("INSERT INTO resources (type, id, vid, ts, deleted, seq) VALUES (?, ?, 1, ?, ?, 0) RETURNING rid")
	insHist := rebind("INSERT INTO history (rid, type, id, vid, ts, method, body) VALUES (?, ?, ?, 1, ?, 'PUT', ?) RETURNING seq")
	setSeq := rebind("UPDATE resources SET seq = ? WHERE rid = ?")
	var batch []*resource.Resource
	var written, ts int64
	flush := func() error {
		ts = max(ts+1, time.Now().UnixMicro())
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, r := range batch {
			var rid, seq int64
			if err := tx.QueryRowContext(ctx, insRes, r.Type, r.ID, ts, false).Scan(&rid); err != nil {
				return err
			}
			body := r.Render(1, time.UnixMicro(ts))
			if err := tx.QueryRowContext(ctx, insHist, rid, r.Type, r.ID, ts, body).Scan(&seq); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, setSeq, seq, rid); err != nil {
				return err
			}
		}
		written += int64(len(batch))
		batch = batch[:0]
		return tx.Commit()
	}
	err = seed.Generate(ctx, seed.Options{Patients: n, Seed: 1}, func(_, _ string, body []byte) error {
		r, err := resource.Parse(body)
		if err != nil {
			return err
		}
		if batch = append(batch, r); len(batch) == 5000 {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	return written, err
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
