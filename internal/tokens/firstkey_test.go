package tokens

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// sqlKeys adapts a SQL store to KeyStore as the server does: insert, and on
// a taken KID update only the validity window.
type sqlKeys struct{ s store.KeyStore }

func (k sqlKeys) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	recs, err := k.s.ListSigningKeys(ctx)
	out := make([]SigningKey, len(recs))
	for i, r := range recs {
		out[i] = SigningKey{KID: r.KID, Alg: r.Alg, PrivateKeyPEM: r.Private, Created: r.CreatedAt,
			SignUntil: r.SignUntil, RetireAfter: r.VerifyUntil}
	}
	return out, err
}

func (k sqlKeys) PutSigningKey(ctx context.Context, sk SigningKey) error {
	rec := store.SigningKey{KID: sk.KID, Alg: sk.Alg, Private: sk.PrivateKeyPEM, CreatedAt: sk.Created,
		SignUntil: sk.SignUntil, VerifyUntil: sk.RetireAfter}
	err := k.s.PutSigningKey(ctx, rec)
	if errors.Is(err, store.ErrExists) {
		return k.s.UpdateSigningKey(ctx, rec)
	}
	return err
}

func (k sqlKeys) DeleteSigningKey(ctx context.Context, kid string) error {
	if err := k.s.DeleteSigningKey(ctx, kid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// gatedKeys holds a replica's store calls where the test says, so that the
// test can interleave two replicas' key creation step by step.
type gatedKeys struct {
	KeyStore
	mu    sync.Mutex
	calls int
	// hold reports whether call number n (from 1), of kind "list" or
	// "put", waits for release after announcing itself on arrived.
	hold    func(kind string, n int) bool
	arrived chan string
	release chan struct{}
}

// waitArrival waits until a held call announces itself.
func (g *gatedKeys) waitArrival(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the held store call never came")
	}
}

func newGated(s KeyStore, hold func(string, int) bool) *gatedKeys {
	return &gatedKeys{KeyStore: s, hold: hold, arrived: make(chan string, 1), release: make(chan struct{})}
}

func (g *gatedKeys) gate(kind string) {
	g.mu.Lock()
	g.calls++
	n := g.calls
	g.mu.Unlock()
	if g.hold(kind, n) {
		g.arrived <- kind
		<-g.release
	}
}

func (g *gatedKeys) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	g.gate("list")
	return g.KeyStore.ListSigningKeys(ctx)
}

func (g *gatedKeys) PutSigningKey(ctx context.Context, k SigningKey) error {
	g.gate("put")
	return g.KeyStore.PutSigningKey(ctx, k)
}

// openSQLKeys opens its own connection to the database at url, as a
// second server process would.
func openSQLKeys(t *testing.T, url string) KeyStore {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return sqlKeys{st}
}

type replica struct {
	ring *Keyring
	svc  *Service
	err  error
	done chan struct{}
}

// openReplica starts OpenKeyring on store in the background, with its own
// clock, as a server's start does.
func openReplica(store KeyStore, now time.Time) *replica {
	r := &replica{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		clk := &clock{t: now}
		r.ring, r.err = OpenKeyring(context.Background(), KeyringConfig{Store: store, Now: clk.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if r.err == nil {
			r.svc, r.err = New(Config{Issuer: issuer, Keyring: r.ring, Now: clk.Now,
				Clients: &activeSet{inactive: map[string]bool{}, reg: map[string]string{}}})
		}
	}()
	return r
}

func (r *replica) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("OpenKeyring did not return")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
}

// TestFirstKeyRace starts two servers on one empty database so that both
// find no signing key, in the two orders that can happen, and checks that
// they end up signing with one key: each verifies the other's tokens at
// once, without waiting for a reload (the clocks stand still, so the
// unknown-kid reload interval never passes).
func TestFirstKeyRace(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		tests := []struct {
			name string
			run  func(t *testing.T, url string) (a, b *replica)
		}{
			{"both decide before either stores", func(t *testing.T, url string) (*replica, *replica) {
				// Hold each replica at its first put: both have listed an
				// empty store and generated a key by then.
				atPut := func(kind string, _ int) bool { return kind == "put" }
				ga, gb := newGated(openSQLKeys(t, url), atPut), newGated(openSQLKeys(t, url), atPut)
				a, b := openReplica(ga, t0), openReplica(gb, t0.Add(time.Second))
				ga.waitArrival(t)
				gb.waitArrival(t)
				close(ga.release)
				a.wait(t) // a stored its key and signs with it
				close(gb.release)
				b.wait(t)
				return a, b
			}},
			{"one decides after the other stored", func(t *testing.T, url string) (*replica, *replica) {
				// Hold b after its first reload found no key; a then
				// starts, stores a key and returns; then b goes on.
				afterFirst := func(_ string, n int) bool { return n == 2 }
				gb := newGated(openSQLKeys(t, url), afterFirst)
				b := openReplica(gb, t0.Add(time.Second))
				gb.waitArrival(t)
				a := openReplica(openSQLKeys(t, url), t0)
				a.wait(t)
				close(gb.release)
				b.wait(t)
				return a, b
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				url := newURL(t)
				a, b := tt.run(t, url)
				if ka, kb := a.ring.SigningKID(), b.ring.SigningKID(); ka != kb {
					t.Fatalf("the replicas sign with different keys: %s and %s", ka, kb)
				}
				ctx := context.Background()
				for _, pair := range []struct {
					name          string
					issuer, other *replica
				}{{"a to b", a, b}, {"b to a", b, a}} {
					tok, _, err := pair.issuer.svc.Issue(Client{ID: "c1"}, "system/*.read", 300*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := pair.other.svc.Verify(ctx, tok); err != nil {
						t.Fatalf("%s: %v", pair.name, err)
					}
				}
				keys, err := openSQLKeys(t, url).ListSigningKeys(ctx)
				if err != nil || len(keys) != 1 {
					t.Fatalf("%d keys stored (%v), want 1", len(keys), err)
				}
			})
		}
	})
}

// TestScheduledRotationRace: when the signing key stops signing, every
// replica's Maintain finds none that can sign; two that both decide to add
// one before either stores it end up with one new key between them.
func TestScheduledRotationRace(t *testing.T) {
	keys := newMemKeys()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	open := func(s KeyStore) *Keyring {
		r, err := OpenKeyring(context.Background(), KeyringConfig{Store: s, Now: clk.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	holding := false
	atPut := func(kind string, _ int) bool { return holding && kind == "put" }
	ga, gb := newGated(keys, atPut), newGated(keys, atPut)
	a, b := open(ga), open(gb)
	first := a.SigningKID()
	clk.Add(30*24*time.Hour + time.Minute) // past SignUntil, within VerifyGrace
	holding = true
	errs := make(chan error, 2)
	go func() { errs <- a.Maintain(context.Background()) }()
	go func() { errs <- b.Maintain(context.Background()) }()
	ga.waitArrival(t)
	gb.waitArrival(t)
	close(ga.release)
	close(gb.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if a.SigningKID() == first || a.SigningKID() != b.SigningKID() {
		t.Fatalf("signing keys after rotation: %q and %q (old %q)", a.SigningKID(), b.SigningKID(), first)
	}
	if len(keys.keys) != 2 {
		t.Fatalf("%d keys stored, want the old and one new", len(keys.keys))
	}
}

// TestRotateInOneInstant: keys created in the same instant still get new
// KIDs, so a rotation always makes a new key.
func TestRotateInOneInstant(t *testing.T) {
	f := newFixture(t, "ES256")
	seen := map[string]bool{f.ring.SigningKID(): true}
	for i := 0; i < 4; i++ {
		if err := f.ring.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		if kid := f.ring.SigningKID(); seen[kid] || kid == "" {
			t.Fatalf("rotation %d signs with %q, seen before", i, kid)
		}
		seen[f.ring.SigningKID()] = true
	}
	if len(f.store.keys) != 5 {
		t.Fatalf("%d keys stored, want 5", len(f.store.keys))
	}
}
