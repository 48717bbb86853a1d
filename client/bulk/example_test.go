package bulk_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/fhirgate/fhirgate/client"
	"github.com/fhirgate/fhirgate/client/bulk"
)

// Export the members of a Group, with progress and a time limit; Ctrl-C
// cancels the export on the server too.
func ExampleClient_Export() {
	const base = "https://fhir.example.org/fhir"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	key, err := client.LoadKeyFile("keys/private.pem", "")
	if err != nil {
		log.Fatal(err)
	}
	ts, err := client.NewTokenSource(client.Config{ClientID: "my-backend-service", Key: key,
		Scopes: []string{"system/*.rs"}, FHIRBaseURL: base})
	if err != nil {
		log.Fatal(err)
	}
	c := bulk.New(base, ts.Client())
	c.Parallel = 8
	c.Poll.MaxWait = 6 * time.Hour
	c.OnProgress = func(p bulk.Progress) {
		log.Printf("%s %s: %d/%d files, %d resources", p.Phase, p.Message, p.FilesDone, p.FilesTotal, p.Resources)
	}
	res, err := c.Export(ctx, bulk.Request{
		GroupID: "diabetes-cohort",
		Types:   []string{"Patient", "Condition", "MedicationRequest"},
		Since:   time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}, "export")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Resources, "resources written to", res.Dir)
}
