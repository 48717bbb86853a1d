package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/logctx"
)

// failingList is a KeyStore whose ListSigningKeys fails once fail is set.
type failingList struct {
	*memKeys
	fail bool
}

func (f *failingList) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	if f.fail {
		return nil, errors.New("store down")
	}
	return f.memKeys.ListSigningKeys(ctx)
}

// TestReloadFailureLogCarriesRequestID checks that a reload failing during
// a verification is logged with the request's context, so that the line
// carries its request id.
func TestReloadFailureLogCarriesRequestID(t *testing.T) {
	other := newFixture(t, "ES256")
	// Rotate, so that other signs with a KID the keyring below lacks (the
	// first key of every empty store has the same KID).
	if err := other.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok, _, err := other.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	store := &failingList{memKeys: newMemKeys()}
	clk := &clock{t: other.clk.Now()}
	ring, err := OpenKeyring(context.Background(), KeyringConfig{Store: store, Now: clk.Now,
		Logger: slog.New(logctx.NewHandler(slog.NewJSONHandler(&logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := New(Config{Issuer: issuer, Keyring: ring, Clients: other.clients, Now: clk.Now})
	store.fail = true
	clk.Add(6 * time.Second) // past the reload interval: an unknown kid triggers a reload
	logs.Reset()
	ctx := logctx.With(context.Background(), slog.String("request_id", "req-7"))
	if _, err := svc.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify = %v, want ErrInvalidToken", err)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line["msg"] != "reloading signing keys" || line["request_id"] != "req-7" {
		t.Fatalf("log line = %v, want the reload failure with request_id req-7", line)
	}
	if bytes.Contains(logs.Bytes(), []byte(tok)) {
		t.Fatal("the token is in the log")
	}
}
