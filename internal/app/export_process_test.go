package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/export"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// helperEnv carries the configuration of a server run in a child process.
const helperEnv = "FHIRGATE_EXPORT_HELPER"

type helperConfig struct {
	Addr, DB, DataDir string
	Export            app.ExportConfig
}

// TestExportHelperProcess is not a test: it is the fhirgate server that the
// crash test kills and the benchmark measures, run in a child process (the
// test binary itself, as os/exec's tests do).
func TestExportHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("runs only as the child process of TestExportCrashResume and BenchmarkExport")
	}
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	a, err := app.New(ctx, app.Config{Addr: hc.Addr, DB: hc.DB, DataDir: hc.DataDir, RootSecret: ts.RootSecret,
		Export: hc.Export, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("READY %s\n", a.BaseURL())
	if err := a.Run(ctx); err != nil {
		t.Error(err)
	}
	a.Close()
}

// helper is a server in a child process.
type helper struct {
	cmd  *exec.Cmd
	URL  string
	done chan struct{}
}

// startHelper runs a server with hc in a child process and waits until it
// serves; its log goes to logPath.
func startHelper(t testing.TB, hc helperConfig, logPath string) *helper {
	t.Helper()
	raw, _ := json.Marshal(hc)
	cmd := exec.Command(os.Args[0], "-test.run=^TestExportHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- u
			}
		}
	}()
	go func() { cmd.Wait(); close(h.done) }()
	t.Cleanup(h.kill)
	select {
	case h.URL = <-ready:
		return h
	case <-h.done:
		log, _ := os.ReadFile(logPath)
		t.Fatalf("the server process exited before serving:\n%s", log)
	case <-time.After(60 * time.Second):
		t.Fatal("the server process did not start in a minute")
	}
	return nil
}

// kill ends the child with SIGKILL: no shutdown, no lease released.
func (h *helper) kill() {
	h.cmd.Process.Kill()
	<-h.done
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// bulkAt is bulkFor for a server known by its base URL.
func bulkAt(base string) *bulk.Client {
	c := bulk.New(base+"/fhir", rootHTTP())
	c.Poll = bulk.PollPolicy{Initial: time.Second, Min: time.Second, MaxWait: 3 * time.Minute}
	return c
}

// tokenOf is the lease token in a storage key (…-<part>-<token>.ndjson.gz).
func tokenOf(key string) string {
	k := strings.TrimSuffix(key, ".ndjson.gz")
	return k[strings.LastIndexByte(k, '-')+1:]
}

// TestExportCrashResume kills the server (SIGKILL) in the middle of an
// export, after some files are finished and while a part is half written,
// starts it again, and checks that the export completes with every
// resource exactly once, resumed from its checkpoints (parts of one type
// written by both processes), and identical to an export that ran without
// a crash.
func TestExportCrashResume(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		for _, lost := range []bool{false, true} {
			t.Run(map[bool]string{false: "spool kept", true: "spool lost"}[lost], func(t *testing.T) {
				t.Parallel()
				crashResume(t, newURL, lost)
			})
		}
	})
}

// crashResume is TestExportCrashResume; with lostSpool the parts being
// written vanish with the killed server (as when another machine takes
// over), and are written again from their start.
func crashResume(t *testing.T, newURL func(testing.TB) string, lostSpool bool) {
	{
		ctx := context.Background()
		dbURL, dataDir := newURL(t), t.TempDir()
		st, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		d := seedStore(t, st, 12)
		hc := helperConfig{Addr: freeAddr(t), DB: dbURL, DataDir: dataDir, Export: app.ExportConfig{
			FileMaxResources: 150, CheckpointEvery: 20, RangeRows: 400, PageSize: 10, PagePause: 20 * time.Millisecond,
			Lease: time.Second, IdleWait: 50 * time.Millisecond, PollInterval: time.Second, Workers: 2}}
		logPath := filepath.Join(t.TempDir(), "server.log")
		first := startHelper(t, hc, logPath)
		job, err := bulkAt(first.URL).Kickoff(ctx, bulk.Request{})
		if err != nil {
			t.Fatal(err)
		}
		id := job.StatusURL[strings.LastIndexByte(job.StatusURL, '/')+1:]
		waitFor(t, "a half-written part after a finished one", func() bool {
			files, _ := st.ExportFiles(ctx, id)
			tasks, _ := st.ExportTasks(ctx, id)
			for _, task := range tasks {
				var state struct {
					Types map[string]struct{ Bytes int64 }
				}
				json.Unmarshal(task.State, &state)
				for _, ls := range state.Types {
					if len(files) > 0 && ls.Bytes > 0 && !task.Done {
						return true
					}
				}
			}
			return false
		})
		first.kill()
		if j, _ := st.GetExportJob(ctx, id); j.Status != store.ExportRunning {
			t.Fatalf("the export finished before the kill: %+v", j)
		}
		if lostSpool {
			if err := os.RemoveAll(filepath.Join(dataDir, "exports", ".spool")); err != nil {
				t.Fatal(err)
			}
		}

		second := startHelper(t, hc, logPath)
		c := bulkAt(second.URL)
		m, err := c.Job(job.StatusURL).Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Download(ctx, m, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		got := readFiles(t, res)
		assertExact(t, got, d, sortedKeys(d))

		files, _ := st.ExportFiles(ctx, id)
		tokens := map[int]map[string]bool{}
		resumed := false
		for _, f := range files {
			if tokens[f.TaskSeq] == nil {
				tokens[f.TaskSeq] = map[string]bool{}
			}
			tokens[f.TaskSeq][tokenOf(f.Key)] = true
			resumed = resumed || len(tokens[f.TaskSeq]) > 1
		}
		if !resumed {
			t.Fatalf("no type has parts from both processes: the export restarted instead of resuming (%v)", tokens)
		}

		if log, _ := os.ReadFile(logPath); lostSpool != strings.Contains(string(log), "redoing the part") {
			t.Fatalf("lost spool %v, but the server log says otherwise:\n%s", lostSpool, log)
		}
		_, fresh := exported(t, c, bulk.Request{})
		for _, typ := range sortedKeys(d) {
			if !slices.Equal(got[typ], fresh[typ]) {
				t.Fatalf("%s: the resumed export differs from an uninterrupted one", typ)
			}
		}
	}
}

// TestExportTwoServersOnePostgres: two servers on one PostgreSQL database
// (and one shared export directory) share the tasks of several exports;
// each export is complete and holds every resource once.
func TestExportTwoServersOnePostgres(t *testing.T) {
	url := testdb.PostgresURL(t)
	dir := t.TempDir()
	shared := func(c *app.Config) {
		c.Export.Dir = dir
		c.Export.Workers = 1
		c.Export.MaxPerClient = 10
		c.Export.PageSize = 20
		c.Export.PagePause = 10 * time.Millisecond
	}
	a := ts.Start(t, url, fastExport, shared)
	b := ts.Start(t, url, fastExport, shared)
	d := seedStore(t, a.Store(), 6)
	ctx := context.Background()
	var jobs []*bulk.Job
	for i := 0; i < 4; i++ {
		s := []*ts.Server{a, b}[i%2]
		j, err := bulkFor(s, rootHTTP()).Kickoff(ctx, bulk.Request{})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	owners := map[string]bool{}
	for i, j := range jobs {
		c := bulkFor([]*ts.Server{b, a}[i%2], rootHTTP()) // poll through the other server
		m, err := c.Job(j.StatusURL).Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Download(ctx, m, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		assertExact(t, readFiles(t, res), d, sortedKeys(d))
		id := j.StatusURL[strings.LastIndexByte(j.StatusURL, '/')+1:]
		tasks, _ := a.Store().ExportTasks(ctx, id)
		for _, task := range tasks {
			owners[task.LeaseOwner] = true
		}
	}
	if len(owners) < 2 {
		t.Fatalf("one server did all the work: %v", owners)
	}
}

// TestExportS3 runs exports into an S3-compatible bucket (an in-process
// fake), with downloads proxied through fhirgate or redirected to
// presigned URLs, and cancels one to see its objects go.
func TestExportS3(t *testing.T) {
	for _, mode := range []string{"proxy", "redirect"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			backend := s3mem.New()
			if err := backend.CreateBucket("exports"); err != nil {
				t.Fatal(err)
			}
			fake := httptest.NewServer(gofakes3.New(backend).Server())
			defer fake.Close()
			s := ts.Start(t, testdb.SQLiteURL(t), fastExport, func(c *app.Config) {
				c.Export.Storage = "s3"
				c.Export.Download = mode
				c.Export.FileMaxResources = 40
				c.Export.S3 = export.S3Config{Endpoint: strings.TrimPrefix(fake.URL, "http://"), Insecure: true, PathStyle: true,
					Bucket: "exports", Region: "us-east-1", AccessKey: "key", SecretKey: "secret", Prefix: "fhirgate/"}
			})
			d := seedStore(t, s.Store(), 3)
			res, got := exported(t, bulkFor(s, rootHTTP()), bulk.Request{})
			assertExact(t, got, d, sortedKeys(d))
			objects := func() int {
				l, err := backend.ListBucket("exports", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
				if err != nil {
					t.Fatal(err)
				}
				return len(l.Contents)
			}
			if n := objects(); n != len(res.Manifest.Output) {
				t.Fatalf("%d objects for %d files", n, len(res.Manifest.Output))
			}
			file := statusPath(t, s, res.Manifest.Output[0].URL)
			zipped := s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": "gzip"}})
			if mode == "redirect" {
				// ts.Do follows redirects: the body came from the bucket.
				if zipped.Request.URL.Host != strings.TrimPrefix(fake.URL, "http://") || !strings.Contains(zipped.Request.URL.RawQuery, "X-Amz-Signature") {
					t.Fatalf("gzip download was not redirected to a presigned URL: %s", zipped.Request.URL.Redacted())
				}
			}
			zipped.Expect(t, 200)
			if zipped.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("gzip download: %v", zipped.Header)
			}
			// A client without gzip is always served through fhirgate.
			plain := s.Do(ts.Req{Method: "GET", Path: file, Header: map[string]string{"Accept-Encoding": "identity", "Range": "bytes=10-"}}).Expect(t, 206)
			if plain.Request.URL.Host != strings.TrimPrefix(s.URL, "http://") || !strings.HasPrefix(string(plain.Body), firstLine(got, res.Manifest.Output[0].Type)[10:]) {
				t.Fatalf("identity Range download %s", plain.Body[:min(80, len(plain.Body))])
			}
			// No token, no redirect.
			s.Do(ts.Req{Method: "GET", Path: file, Auth: "none", Header: map[string]string{"Accept-Encoding": "gzip"}}).Expect(t, 401)
			// Cancel: the objects go.
			s.Do(ts.Req{Method: "DELETE", Path: statusPath(t, s, res.StatusURL)}).Expect(t, 202)
			waitFor(t, "the objects' removal", func() bool { return objects() == 0 })
		})
	}
}

func firstLine(got map[string][]string, typ string) string {
	return got[typ][0] + "\n"
}
