package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Backend names.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// database is the fresh, empty database of one run.
type database struct {
	// URL is what serve --db and the loader open.
	URL string
	// Backend is BackendSQLite or BackendPostgres.
	Backend string
	// Version describes the database engine for the report.
	Version string
	// drop removes the database; nil when there is nothing to drop.
	drop func(ctx context.Context) error
}

// backendOf names the backend of a --db value: "sqlite" (optionally with a
// query such as sqlite?synchronous=normal) or a postgres:// DSN.
func backendOf(spec string) (string, error) {
	switch {
	case spec == "" || spec == BackendSQLite || strings.HasPrefix(spec, BackendSQLite+"?"):
		return BackendSQLite, nil
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		return BackendPostgres, nil
	}
	return "", fmt.Errorf("bench: --db %q: want sqlite, sqlite?PARAMS or a postgres:// DSN", spec)
}

// prepareDatabase makes the fresh database of a run: an SQLite file in dir,
// or a new schema on the PostgreSQL server of the DSN, which Drop removes
// with everything in it.
func prepareDatabase(ctx context.Context, spec, dir string) (*database, error) {
	backend, err := backendOf(spec)
	if err != nil {
		return nil, err
	}
	if backend == BackendSQLite {
		_, query, _ := strings.Cut(spec, "?")
		u := "sqlite:" + filepath.Join(dir, "fhirgate.db")
		sync := "synchronous=FULL"
		if query != "" {
			u += "?" + query
			if strings.Contains(strings.ToLower(query), "synchronous=") {
				sync = query
			}
		}
		return &database{URL: u, Backend: backend, Version: "SQLite (embedded, WAL, " + sync + ")"}, nil
	}
	return preparePostgres(ctx, spec)
}

// preparePostgres creates schema bench_<random> and returns the DSN that
// puts it first on the search_path, the way the store's tests isolate runs.
func preparePostgres(ctx context.Context, dsn string) (*database, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("bench: PostgreSQL version: %w", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := "bench_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("bench: create schema %s: %w", schema, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("bench: --db: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return &database{
		URL:     u.String(),
		Backend: BackendPostgres,
		Version: "PostgreSQL " + version,
		drop: func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return fmt.Errorf("bench: drop schema %s: %w", schema, err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				return fmt.Errorf("bench: drop schema %s: %w", schema, err)
			}
			return nil
		},
	}, nil
}

// Drop removes the database, if it has anything to remove.
func (d *database) Drop(ctx context.Context) error {
	if d == nil || d.drop == nil {
		return nil
	}
	return d.drop(ctx)
}
