// Package sqlstore implements store.Store on SQLite (embedded, the default)
// and PostgreSQL: one SQL implementation, two dialects, the same
// conformance suite (storetest) for both.
//
// SQLite runs in WAL mode with one writer connection and a pool of
// read-only connections, so reads never wait for writes and writes never
// fight over locks inside one process. PostgreSQL uses one pgx pool; row
// locks (SELECT ... FOR UPDATE) and advisory locks make concurrent writers in
// several fhirgate processes correct.
//
// Resources live in two tables: history holds every version's JSON once, in
// write order; resources points at the current version of each logical
// resource. Reads join the two by primary key; exports and history listings
// scan history by (type, ts).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/fhirgate/fhirgate/internal/store"
)

// Options tune a Store.
type Options struct {
	// ReadConns is the size of the SQLite reader pool (default 2×GOMAXPROCS,
	// at least 4) or of the PostgreSQL pool (default 4×GOMAXPROCS, at least 8).
	ReadConns int
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Store is a store.Store on SQLite or PostgreSQL.
type Store struct {
	d   dialect
	w   *sql.DB // writes (SQLite: exactly one connection)
	r   *sql.DB // reads (PostgreSQL: the same pool as w)
	now func() time.Time

	stmts  stmts
	search searchState

	// SQLite group commit (groupcommit.go).
	writes     chan *writeReq
	stopWriter chan struct{}
	writerDone chan struct{}
	stopOnce   sync.Once
	ckpt       *checkpointer // SQLite background checkpoints (checkpoint.go)
	reads      readStmts     // SQLite prepared read statements (readstmt.go)
}

var _ store.Store = (*Store)(nil)

// Open connects to the database that url names, creating it (SQLite) and
// applying pending migrations. Accepted forms: sqlite:PATH, sqlite://PATH,
// postgres://..., postgresql://....
func Open(ctx context.Context, dbURL string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{now: opts.Now}
	var err error
	switch {
	case strings.HasPrefix(dbURL, "sqlite:"):
		s.d = sqliteDialect
		err = s.openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite:"), "//"), opts)
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		s.d = postgresDialect
		err = s.openPostgres(ctx, dbURL, opts)
	default:
		return nil, fmt.Errorf("unsupported database URL %q: use sqlite:PATH or postgres://user:pass@host/db", redactURL(dbURL))
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := migrate(ctx, s.w, s.d); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate %s database: %w", s.d.name, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.initSearch(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if !s.d.pg {
		s.startCommitter()
	}
	return s, nil
}

// Dialect names the backend: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

func (s *Store) openSQLite(ctx context.Context, spec string, opts Options) error {
	path, query, _ := strings.Cut(spec, "?")
	if path == "" {
		return errors.New("sqlite: empty path: use sqlite:./fhirgate-data/fhirgate.db")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("sqlite: bad options %q: %w", query, err)
	}
	sync := strings.ToUpper(params.Get("synchronous"))
	if sync == "" {
		// FULL: a committed write survives a power loss, not only a crash.
		sync = "FULL"
	}
	if sync != "FULL" && sync != "NORMAL" && sync != "EXTRA" {
		return fmt.Errorf("sqlite: synchronous=%s: want full, normal or extra", sync)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("sqlite: create directory for %s: %w", path, err)
		}
	}
	// Page caches are per connection and count in the server's memory:
	// 16 MiB for the writer, which revisits index pages on every write, and
	// 8 MiB per reader; the operating system's page cache holds the file
	// beyond that. (32 MiB each took a reading server to 357 MiB of RSS.)
	// The path goes into a URI filename: escape what would end it early.
	uriPath := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	base := "file:" + uriPath + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=" + sync +
		"&_pragma=temp_store(memory)"
	w, err := sql.Open("sqlite", base+"&_pragma=cache_size(-16384)&_txlock=immediate"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(ckptWriterPages)+")")
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s.w = w
	if err := w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r, err := sql.Open("sqlite", base+"&_pragma=cache_size(-8192)&_query_only=1")
	if err != nil {
		return err
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	s.r = r
	c, err := sql.Open("sqlite", base+"&_pragma=cache_size(-1024)")
	if err != nil {
		return err
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxLifetime(0)
	s.ckpt = startCheckpointer(c)
	return nil
}

func (s *Store) openPostgres(ctx context.Context, dsn string, opts Options) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(8, 4*runtime.GOMAXPROCS(0))
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.w, s.r = db, db
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("postgres: connect to %s: %w", redactURL(dsn), err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.r.PingContext(ctx)
}

// Close closes the connection pools.
func (s *Store) Close() error {
	var errs []error
	s.stopCommitter()
	errs = append(errs, s.ckpt.close())
	s.stmts.close()
	s.reads.close()
	s.search.close()
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// redactURL hides the password of a database URL so that it can be logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
