package authserver

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/internal/tokens"
)

// benchWorld is a server with an RS384 client behind a loopback JWKS
// server, logging to nowhere (as production logs to a file or pipe).
func benchWorld(b *testing.B) (*fixture, *jwkstest.KeyPair) {
	f := newFixture(b, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) })
	kp := jwkstest.New(b, "RS384", "bench")
	srv := jwkstest.NewServer(b, jwkstest.JWKS(b, kp))
	srv.SetHeader("Cache-Control", "max-age=3600")
	f.register("bench", backendClient(map[string]any{"jwks_uri": srv.URL()}))
	return f, kp
}

// presign makes n assertions (client-side work, not measured) on all cores.
func presign(b *testing.B, f *fixture, kp *jwkstest.KeyPair, n int) []string {
	out := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				out[i] = kp.Sign(b, nil, f.claims("bench"))
			}
		}()
	}
	wg.Wait()
	return out
}

// BenchmarkTokenRS384 measures token issuance end to end through
// Server.Token: form checks, assertion decoding and checks, client lookup
// (cached), JWKS (cached), RS384 signature verification, replay record,
// scope negotiation, ES256 access-token signing and the audit line.
func BenchmarkTokenRS384(b *testing.B) {
	f, kp := benchWorld(b)
	assertions := presign(b, f, kp, b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.srv.Token(ctx, tokenRequest(assertions[i], "system/*.read")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkTokenRS384Parallel is the same on every core.
func BenchmarkTokenRS384Parallel(b *testing.B) {
	f, kp := benchWorld(b)
	assertions := presign(b, f, kp, b.N)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.srv.Token(ctx, tokenRequest(assertions[next.Add(1)-1], "system/*.read")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkAuthenticateBearer measures what every FHIR request pays to
// check its token, seen before (cached) and, for reference, the first time.
func BenchmarkAuthenticateBearer(b *testing.B) {
	f, kp := benchWorld(b)
	ctx := context.Background()
	resp, err := f.srv.Token(ctx, tokenRequest(kp.Sign(b, nil, f.claims("bench")), "system/*.read"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		f.srv.AuthenticateBearer(ctx, resp.AccessToken)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.srv.AuthenticateBearer(ctx, resp.AccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		toks := make([]string, 2000)
		bench, _ := f.srv.Client(ctx, "bench")
		for i := range toks {
			t, _, err := f.srv.Tokens().Issue(tokens.Client{ID: "bench", Registration: bench.Registration}, "system/*.read", 300e9)
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = t
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i%len(toks) == 0 && i > 0 {
				b.StopTimer()
				f.srv.tokens, _ = newTokensForBench(f)
				b.StartTimer()
			}
			if _, err := f.srv.AuthenticateBearer(ctx, toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthenticateBasicCached is a hot HTTP Basic client.
func BenchmarkAuthenticateBasicCached(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) })
	f.register("basic", map[string]any{"secret": "secret", "grant_types": []string{"basic"}})
	ctx := context.Background()
	f.srv.AuthenticateBasic(ctx, "basic", "secret")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.srv.AuthenticateBasic(ctx, "basic", "secret"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySecret is one argon2id verification (a Basic cache miss).
func BenchmarkVerifySecret(b *testing.B) {
	h, _ := HashSecret("secret")
	for b.Loop() {
		if !VerifySecret(h, "secret") {
			b.Fatal("no match")
		}
	}
}

// newTokensForBench gives the server a token service with an empty cache.
func newTokensForBench(f *fixture) (*tokens.Service, error) {
	return tokens.New(tokens.Config{Issuer: f.srv.cfg.BaseURL, Keyring: f.srv.cfg.Keyring, Clients: f.srv, Now: f.clk.Now})
}
