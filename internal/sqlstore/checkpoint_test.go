package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testdb"
)

// TestBackgroundCheckpoint: commits kick the background checkpointer,
// which copies the WAL back into the database file while the writer goes
// on, and the store reads what it wrote throughout. The database file
// grows only through checkpoints (the writer's own automatic checkpoint
// waits for 64 MiB of WAL), so a grown file proves the background ones ran.
func TestBackgroundCheckpoint(t *testing.T) {
	url := testdb.SQLiteURL(t)
	s := openTest(t, func(testing.TB) string { return url })
	path := url[len("sqlite:"):]
	before := fileSize(t, path)
	for i := range 200 {
		put(t, s, fmt.Sprintf(`{"resourceType":"Patient","id":"p%d","name":[{"family":"Checkpoint%d"}]}`, i, i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.ckpt.runs.Load() == 0 || fileSize(t, path) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no background checkpoint after 200 commits: %d runs, database file %d bytes (was %d)",
				s.ckpt.runs.Load(), fileSize(t, path), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	v, err := s.Read(context.Background(), "Patient", "p199")
	if err != nil || v == nil {
		t.Fatalf("read after checkpoints: %v, %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestPathWithURICharacters: a database path holding # or % (a test name
// like TestX#01 puts # in t.TempDir) opens the file at that path. (A ?
// starts the options of a sqlite: URL, so paths cannot hold one.)
func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b%c")
	path := filepath.Join(dir, "fhirgate.db")
	s := openTest(t, func(testing.TB) string { return "sqlite:" + path })
	put(t, s, `{"resourceType":"Patient","id":"p1"}`)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}
