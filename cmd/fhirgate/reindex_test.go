package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
)

func TestReindexCommand(t *testing.T) {
	ctx := context.Background()
	db := "sqlite:" + filepath.Join(t.TempDir(), "f.db")
	st, err := sqlstore.Open(ctx, db, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := resource.Parse([]byte(`{"resourceType":"Patient","id":"p1","name":[{"family":"Reindexed"}]}`))
	if err := st.Write(ctx, func(tx store.Tx) error { _, err := tx.Create(ctx, r); return err }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, _, err := runCLI(t, ctx, "reindex", "--db", db, "--status")
	if err != nil || !strings.Contains(out, "the search index is current") {
		t.Fatalf("status: %q %v", out, err)
	}
	out, _, err = runCLI(t, ctx, "reindex", "--db", db)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("idle: %q %v", out, err)
	}
	out, _, err = runCLI(t, ctx, "reindex", "--db", db, "--type", "Patient", "--force")
	if err != nil || !strings.Contains(out, "rebuilt 1 resources of Patient") {
		t.Fatalf("forced: %q %v", out, err)
	}
	_, _, err = runCLI(t, ctx, "reindex", "--db", db, "--type", "Nope")
	if err == nil || !strings.Contains(err.Error(), `"Nope" is not a resource type`) {
		t.Fatalf("unknown type: %v", err)
	}
	_, _, err = runCLI(t, ctx, "reindex")
	if err == nil || !strings.Contains(err.Error(), "--db is required") {
		t.Fatalf("no --db: %v", err)
	}
}
