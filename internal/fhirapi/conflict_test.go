package fhirapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/httpapi"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// takenIDs is the real store in the one state the 409 of a create needs:
// the server-assigned id is already taken when the insert runs. A UUIDv7
// with 74 random bits does not collide in practice, so the state is
// crafted at the store seam: each Create first stores another resource
// under the same id in the same transaction, then runs the real insert,
// which answers store.ErrExists.
type takenIDs struct{ store.Store }

func (s takenIDs) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(claimingTx{tx}) })
}

type claimingTx struct{ store.Tx }

func (tx claimingTx) Create(ctx context.Context, r *resource.Resource) (*store.Version, error) {
	other, err := resource.Parse([]byte(`{"resourceType":"` + r.Type + `","id":"` + r.ID + `"}`))
	if err != nil {
		return nil, err
	}
	if _, _, err := tx.Tx.Update(ctx, other, 0); err != nil {
		return nil, err
	}
	return tx.Tx.Create(ctx, r)
}

func conflictService(t *testing.T) (*fhirapi.Service, store.Store) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), testdb.SQLiteURL(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	taken := takenIDs{st}
	return fhirapi.New(fhirapi.Config{Store: taken, BaseURL: "http://fhirgate.test", Authorizer: allowAll}), taken
}

// TestCreateIDTaken409: a create whose server-assigned id is taken answers
// 409 conflict (R4 http.html#create), alone, as a transaction entry (the
// whole transaction fails) and as a batch entry (that entry fails), and
// over HTTP as an OperationOutcome; nothing is stored.
func TestCreateIDTaken409(t *testing.T) {
	ctx := context.Background()
	patient := []byte(`{"resourceType":"Patient","name":[{"family":"Taken"}]}`)
	svc, st := conflictService(t)

	t.Run("create", func(t *testing.T) {
		_, err := svc.Create(ctx, "Patient", patient, "")
		fe := fhir.AsError(err)
		if fe == nil || fe.Status != http.StatusConflict || fe.Code != fhir.IssueConflict || !strings.Contains(fe.Diagnostics, "already exists") {
			t.Fatalf("error %v, want 409 conflict", err)
		}
	})
	t.Run("transaction", func(t *testing.T) {
		_, err := svc.Bundle(ctx, []byte(`{"resourceType":"Bundle","type":"transaction","entry":[
		  {"fullUrl":"urn:uuid:5b1c7e52-8f3a-4c1e-9d7a-2f4b6c8d0e1f","resource":`+string(patient)+`,"request":{"method":"POST","url":"Patient"}}]}`),
			fhirapi.BundleOptions{})
		fe := fhir.AsError(err)
		if fe == nil || fe.Status != http.StatusConflict || !strings.HasPrefix(fe.Diagnostics, "entry 0 (POST Patient): ") {
			t.Fatalf("error %v, want 409 naming entry 0", err)
		}
	})
	t.Run("batch", func(t *testing.T) {
		res, err := svc.Bundle(ctx, []byte(`{"resourceType":"Bundle","type":"batch","entry":[
		  {"resource":`+string(patient)+`,"request":{"method":"POST","url":"Patient"}}]}`), fhirapi.BundleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				Response struct {
					Status string `json:"status"`
				} `json:"response"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(res.Body, &b); err != nil || len(b.Entry) != 1 || !strings.HasPrefix(b.Entry[0].Response.Status, "409") {
			t.Fatalf("batch response %s (%v), want entry status 409", res.Body, err)
		}
	})
	t.Run("HTTP", func(t *testing.T) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		srv := httptest.NewServer(httpapi.New(httpapi.Config{FHIR: svc, Store: st, RootSecret: "r", Logger: log}))
		defer srv.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/fhir/Patient", strings.NewReader(string(patient)))
		req.Header.Set("Content-Type", fhir.MediaJSON)
		req.SetBasicAuth("root", "r")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var oo struct {
			ResourceType string `json:"resourceType"`
			Issue        []struct {
				Code string `json:"code"`
			} `json:"issue"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&oo); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusConflict || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 || oo.Issue[0].Code != "conflict" {
			t.Fatalf("%d %+v, want 409 with an OperationOutcome of code conflict", resp.StatusCode, oo)
		}
	})
	// Every write rolled back: the claimed ids are gone too.
	page, err := st.History(ctx, store.HistoryQuery{Type: "Patient"})
	if err != nil || len(page.Versions) != 0 {
		t.Fatalf("history after the refused creates: %d versions, %v", len(page.Versions), err)
	}
}
