package tokens

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSign measures token issuance per signing algorithm; it is the
// basis for choosing DefaultAlg.
func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, alg)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.svc.Issue(Client{ID: "bulk-client"}, "system/*.read", 300*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyFirst measures the check of a token never seen before:
// header, signature, claims, client lookup.
func BenchmarkVerifyFirst(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, alg)
			toks := make([]string, 4096)
			for i := range toks {
				toks[i], _, _ = f.svc.Issue(Client{ID: fmt.Sprint("client-", i)}, "system/*.read", 300*time.Second)
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// A fresh cache every time so that each check is a first one.
				f.svc.cache = newVerifiedCache(1 << 20)
				if _, err := f.svc.Verify(ctx, toks[i%len(toks)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkVerifyCached measures the check of a token seen before.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b, DefaultAlg)
	tok, _, _ := f.svc.Issue(Client{ID: "bulk-client"}, "system/*.read", 300*time.Second)
	ctx := context.Background()
	if _, err := f.svc.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the cached check under contention.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	f := newFixture(b, DefaultAlg)
	tok, _, _ := f.svc.Issue(Client{ID: "bulk-client"}, "system/*.read", 300*time.Second)
	ctx := context.Background()
	f.svc.Verify(ctx, tok)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.svc.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
