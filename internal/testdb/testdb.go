// Package testdb hands tests fresh, empty databases on every backend under
// test: SQLite always (a file in t.TempDir), PostgreSQL when the environment
// variable FHIRGATE_TEST_POSTGRES holds a DSN. Each PostgreSQL database is a
// new schema, dropped when the test ends, so tests run in parallel without
// seeing each other's rows.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// EnvPostgres names the environment variable holding the PostgreSQL DSN of
// the test server.
const EnvPostgres = "FHIRGATE_TEST_POSTGRES"

// Backend is a database backend under test.
type Backend struct {
	Name string
	// NewURL returns the URL of a fresh, empty database.
	NewURL func(t testing.TB) string
}

// Backends returns SQLite and, when configured, PostgreSQL.
func Backends() []Backend {
	b := []Backend{{Name: "sqlite", NewURL: SQLiteURL}}
	if os.Getenv(EnvPostgres) != "" {
		b = append(b, Backend{Name: "postgres", NewURL: PostgresURL})
	}
	return b
}

// Each runs fn as a subtest once per backend.
func Each(t *testing.T, fn func(t *testing.T, newURL func(testing.TB) string)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.NewURL) })
	}
}

// SQLiteURL returns the URL of a new SQLite database file.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "fhirgate.db")
}

// PostgresURL returns the URL of a new schema on the test PostgreSQL server,
// or skips the test when none is configured.
func PostgresURL(t testing.TB) string {
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		t.Skip(EnvPostgres + " is not set")
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := "t_" + hex.EncodeToString(rnd[:])
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("create schema on %s: %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
