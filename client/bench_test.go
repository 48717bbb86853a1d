package client_test

import (
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/smarttest"
)

// BenchmarkAssertionSign measures signing one client assertion.
func BenchmarkAssertionSign(b *testing.B) {
	for _, alg := range client.Algorithms() {
		b.Run(alg, func(b *testing.B) {
			a := client.Assertion{Key: testKey(b, alg), ClientID: "c1", TokenURL: "https://as.example/token"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Sign(time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenCached measures Token when the cached token is fresh: the
// cost every authorized request pays.
func BenchmarkTokenCached(b *testing.B) {
	key := testKey(b, client.ES384)
	srv := newServer(b, key, smarttest.Options{})
	ts := newSource(b, srv, key, nil)
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.Token(); err != nil {
				b.Error(err)
			}
		}
	})
}
