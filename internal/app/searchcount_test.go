package app_test

import (
	"fmt"
	"testing"

	"github.com/fhirgate/fhirgate/internal/app"
	"github.com/fhirgate/fhirgate/internal/testdb"
	ts "github.com/fhirgate/fhirgate/internal/testserver"
)

// TestSearchCountSettings: --search-default-count is the page size without
// _count, --search-max-count cuts larger _count values, and a next link
// leads on in both cases.
func TestSearchCountSettings(t *testing.T) {
	s := ts.Start(t, testdb.SQLiteURL(t), func(c *app.Config) { c.SearchDefaultCount, c.SearchMaxCount = 3, 5 })
	for i := range 8 {
		s.Do(ts.Req{Method: "PUT", Path: fmt.Sprintf("/fhir/Patient/p%d", i), Body: fmt.Sprintf(`{"resourceType":"Patient","id":"p%d"}`, i)}).Expect(t, 201)
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 3},
		{"?_count=2", 2},
		{"?_count=5", 5},
		{"?_count=100", 5},
	} {
		b := s.Do(ts.Req{Method: "GET", Path: "/fhir/Patient" + tc.query}).Expect(t, 200).JSON(t)
		entries, _ := b["entry"].([]any)
		if len(entries) != tc.want {
			t.Errorf("Patient%s: %d entries, want %d", tc.query, len(entries), tc.want)
		}
		if !hasLink(b, "next") {
			t.Errorf("Patient%s: no next link with 8 matches", tc.query)
		}
	}
}

func hasLink(bundle map[string]any, rel string) bool {
	links, _ := bundle["link"].([]any)
	for _, l := range links {
		if m, _ := l.(map[string]any); m["relation"] == rel {
			return true
		}
	}
	return false
}

func TestSearchCountValidation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		def, max int
		want     string
	}{
		{"max too large", 50, 20000, "--search-max-count 20000: want 1 to 10000"},
		{"max negative", 50, -1, "--search-max-count -1: want 1 to 10000\n--search-default-count 50: want 1 to --search-max-count (-1)"},
		{"default over max", 200, 100, "--search-default-count 200: want 1 to --search-max-count (100)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := app.Config{Addr: "127.0.0.1:0", DB: testdb.SQLiteURL(t), DataDir: t.TempDir(), SearchDefaultCount: tc.def, SearchMaxCount: tc.max}
			a, err := app.New(t.Context(), cfg)
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			if err.Error() != tc.want {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}
