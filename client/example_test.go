package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
)

// A backend service reads its key, gets tokens for its registered client,
// calls the FHIR API and runs a bulk export. Tokens are refreshed as
// needed behind the http.Client.
func Example() {
	const base = "https://fhir.example.org/fhir"
	ctx := context.Background()

	key, err := client.LoadKeyFile("keys/private.pem", "")
	if err != nil {
		log.Fatal(err)
	}
	ts, err := client.NewTokenSource(client.Config{
		ClientID:    "my-backend-service",
		Key:         key,
		Scopes:      []string{"system/*.rs"},
		FHIRBaseURL: base, // the token endpoint is discovered from here
	})
	if err != nil {
		log.Fatal(err)
	}
	hc := ts.Client()

	resp, err := hc.Get(base + "/Patient?_count=10")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	exporter := bulk.New(base, hc)
	res, err := exporter.Export(ctx, bulk.Request{Types: []string{"Patient", "Observation"}}, "export")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d resources in %d files\n", res.Resources, len(res.Files))
}

// Generate a key pair and print the JWK Set to register with the server.
func ExampleGenerateKey() {
	key, err := client.GenerateKey(client.ES384, 0)
	if err != nil {
		log.Fatal(err)
	}
	key = key.WithKID("my-key-1")
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		log.Fatal(err)
	}
	_ = os.WriteFile(os.DevNull, pemBytes, 0o600) // keep the private key secret

	jwks := client.PublicJWKS(key)
	fmt.Println(jwks.Keys[0].Kty, jwks.Keys[0].Crv, jwks.Keys[0].Kid, jwks.Keys[0].Alg)
	_, _ = json.Marshal(jwks)
	// Output: EC P-384 my-key-1 ES384
}
