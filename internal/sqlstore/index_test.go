package sqlstore

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// openTest opens a fresh store on the backend of newURL.
func openTest(t testing.TB, newURL func(testing.TB) string) *Store {
	t.Helper()
	s, err := Open(context.Background(), newURL(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// put writes body (a resource with an id) as a create or update.
func put(t testing.TB, s *Store, body string) *store.Version {
	t.Helper()
	r, err := resource.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var v *store.Version
	err = s.Write(context.Background(), func(tx store.Tx) error {
		v, _, err = tx.Update(context.Background(), r, 0)
		return err
	})
	if err != nil {
		t.Fatalf("write %s: %v", body, err)
	}
	return v
}

func del(t testing.TB, s *Store, typ, id string) {
	t.Helper()
	err := s.Write(context.Background(), func(tx store.Tx) error {
		_, err := tx.Delete(context.Background(), typ, id, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// indexRows counts the index rows of typ/id per table.
func indexRows(t testing.TB, s *Store, typ, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tb := range indexTables {
		var n int
		err := s.r.QueryRowContext(context.Background(), s.d.rebind("SELECT COUNT(*) FROM "+tb.name+
			" x JOIN resources r ON r.rid = x.rid WHERE r.type = ? AND r.id = ?"), typ, id).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			out[tb.name] = n
		}
	}
	return out
}

func TestIndexFollowsWrites(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		put(t, s, `{"resourceType":"Patient","id":"p1","name":[{"family":"Zoë","given":["Ann","Bea"]}],"gender":"female","birthDate":"1970-03"}`)
		got := indexRows(t, s, "Patient", "p1")
		// name: Zoë, Ann, Bea (+ family, given, phonetic); gender + active etc.
		if got["idx_string"] == 0 || got["idx_token"] == 0 || got["idx_date"] == 0 {
			t.Fatalf("after create: %v", got)
		}
		var norm string
		if err := s.r.QueryRow(s.d.rebind(`SELECT s.norm FROM idx_string s JOIN search_param p ON p.pid = s.pid
			WHERE p.type = 'Patient' AND p.code = 'family'`)).Scan(&norm); err != nil || norm != "zoe" {
			t.Fatalf("family row %q, %v", norm, err)
		}
		// an update replaces the rows
		put(t, s, `{"resourceType":"Patient","id":"p1","gender":"male"}`)
		got = indexRows(t, s, "Patient", "p1")
		if got["idx_string"] != 0 || got["idx_date"] != 0 || got["idx_token"] == 0 {
			t.Fatalf("after update: %v", got)
		}
		// a deletion removes them; re-creating indexes again
		del(t, s, "Patient", "p1")
		if got = indexRows(t, s, "Patient", "p1"); len(got) != 0 {
			t.Fatalf("after delete: %v", got)
		}
		put(t, s, `{"resourceType":"Patient","id":"p1","name":[{"family":"Again"}]}`)
		if got = indexRows(t, s, "Patient", "p1"); got["idx_string"] == 0 {
			t.Fatalf("after re-create: %v", got)
		}
	})
}

func TestIndexAllTables(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		s := openTest(t, newURL)
		put(t, s, `{"resourceType":"Observation","id":"o1","status":"final",
			"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
			"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2020-01-02",
			"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"},
			"component":[{"code":{"coding":[{"code":"x"}]},"valueQuantity":{"value":1.5,"code":"mg"}}]}`)
		put(t, s, `{"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/p1"},
			"prediction":[{"probabilityDecimal":0.25}]}`)
		put(t, s, `{"resourceType":"ValueSet","id":"v1","status":"active","url":"http://example.org/vs/1"}`)
		obs := indexRows(t, s, "Observation", "o1")
		for _, tb := range []string{"idx_token", "idx_date", "idx_quantity", "idx_reference", "idx_composite"} {
			if obs[tb] == 0 {
				t.Errorf("Observation has no %s rows: %v", tb, obs)
			}
		}
		if n := indexRows(t, s, "RiskAssessment", "r1")["idx_number"]; n == 0 {
			t.Errorf("RiskAssessment has no number rows")
		}
		if n := indexRows(t, s, "ValueSet", "v1")["idx_uri"]; n == 0 {
			t.Errorf("ValueSet has no uri rows")
		}
	})
}
