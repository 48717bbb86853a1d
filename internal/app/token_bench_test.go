package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
	"github.com/fhirgate/fhirgate/smart"
)

// BenchmarkTokenEndpoint measures POST /auth/token over real HTTP with
// distinct RS384 assertions (each one verified, its jti recorded in the
// database, an ES256 access token signed), parallel clients, per backend.
// Assertions are signed before the timer starts: signing is the client's
// cost, not the server's.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, be := range testdb.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := ts.Start(b, be.NewURL(b), func(c *app.Config) { c.TokenRatePerClient, c.TokenRatePerAddress = 1e6, 1e6 })
			key, err := client.GenerateKey("RS384", 2048)
			if err != nil {
				b.Fatal(err)
			}
			regs := fmt.Sprintf(`{"active":true,"scope":["system/*.rs"],"grant_types":["client_credentials"],"jwks":%s}`, jwksJSON(key))
			s.Do(ts.Req{Method: "PUT", Path: "/Client/bench", Body: regs}).Expect(b, 201)
			forms := make([]string, b.N)
			for i := range forms {
				a, err := client.Assertion{Key: key, ClientID: "bench", TokenURL: s.URL + "/auth/token"}.Sign(time.Now())
				if err != nil {
					b.Fatal(err)
				}
				forms[i] = url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionTypeJWTBearer},
					"client_assertion": {a}, "scope": {"system/*.rs"}}.Encode()
			}
			var next atomic.Int64
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					req, _ := http.NewRequest("POST", s.URL+"/auth/token", strings.NewReader(forms[i]))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := benchClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("token: %d", resp.StatusCode)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func jwksJSON(k *client.Key) string {
	b, _ := jsonMarshal(client.PublicJWKS(k))
	return string(b)
}

var jsonMarshal = json.Marshal
