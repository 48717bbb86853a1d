package sqlstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/testdb"
)

// TestDateInterval: lower and upper bounds of one date parameter select
// resources with a value inside the interval: points (narrow rows) and
// periods and open ends (wide rows) alike, on both backends.
func TestDateInterval(t *testing.T) {
	obs := func(id, effective string) string {
		return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","code":{"text":"x"},%s}`, id, effective)
	}
	data := []string{
		obs("in-point", `"effectiveDateTime":"2024-03-03T10:00:00Z"`),
		obs("in-day", `"effectiveDateTime":"2024-03-07"`),
		obs("edge-lower", `"effectiveDateTime":"2024-03-01T00:00:00Z"`),
		obs("edge-upper", `"effectiveDateTime":"2024-03-08T00:00:00Z"`),
		obs("before", `"effectiveDateTime":"2024-02-28T23:59:59Z"`),
		obs("after", `"effectiveDateTime":"2024-03-09"`),
		obs("month", `"effectiveDateTime":"2024-03"`),
		obs("period-in", `"effectivePeriod":{"start":"2024-03-02","end":"2024-03-05"}`),
		obs("period-around", `"effectivePeriod":{"start":"2023-01-01","end":"2025-01-01"}`),
		obs("period-before", `"effectivePeriod":{"start":"2023-01-01","end":"2023-12-31"}`),
		obs("open-end", `"effectivePeriod":{"start":"2022-01-01"}`),
		obs("open-start", `"effectivePeriod":{"end":"2024-03-04"}`),
		obs("open-end-later", `"effectivePeriod":{"start":"2024-04-01"}`),
		`{"resourceType":"Observation","id":"no-date","status":"final","code":{"text":"x"}}`,
	}
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		s := openTest(t, newURL)
		for _, b := range data {
			put(t, s, b)
		}
		for _, tc := range []struct{ query, want string }{
			{"date=ge2024-03-01&date=lt2024-03-08",
				"edge-lower in-day in-point month open-end open-start period-around period-in"},
			{"date=gt2024-03-01&date=le2024-03-08",
				"edge-upper in-day in-point month open-end open-start period-around period-in"},
			{"date=ge2024-03-01T00:00:00Z&date=le2024-03-31T23:59:59Z&date=ge2024-03-05",
				"after edge-upper in-day month open-end period-around"},
			{"date=ge2030-01-01&date=lt2031-01-01", "open-end open-end-later"},
			{"date=lt2024-03-08&date=ge2024-03-01&code:text=x",
				"edge-lower in-day in-point month open-end open-start period-around period-in"},
		} {
			got := strings.Join(ids(t, s, "Observation", tc.query, SearchSpec{}), " ")
			if got != tc.want {
				t.Errorf("%s\n got %s\nwant %s", tc.query, got, tc.want)
			}
		}
	})
}
