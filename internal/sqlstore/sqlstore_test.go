package sqlstore_test

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/store/storetest"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

func TestConformance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		storetest.RunTests(t, func(t testing.TB) storetest.Opener {
			url := newURL(t)
			return func(t testing.TB) store.Store {
				s, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		})
	})
}
