package fhirsearch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/fhirsearch"
	"github.com/fhirgate/fhirgate/internal/resource"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// patientStore returns a store holding n Patients p00, p01, ...
func patientStore(t *testing.T, newURL func(testing.TB) string, n int) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, newURL(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			r, err := resource.Parse(fmt.Appendf(nil, `{"resourceType":"Patient","id":"p%02d"}`, i))
			if err != nil {
				return err
			}
			if _, err := tx.Create(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// page is what the paging tests read of a searchset.
type page struct {
	matches int
	total   *int
	links   map[string]string
}

func searchPage(t *testing.T, e *fhirsearch.Engine, typ, raw string) page {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Search(context.Background(), fhirapi.SearchRequest{Type: typ, Params: v})
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, raw, err)
	}
	var b struct {
		Total *int
		Link  []struct{ Relation, URL string }
		Entry []struct{ Search struct{ Mode string } }
	}
	if err := json.Unmarshal(res.Body, &b); err != nil {
		t.Fatal(err)
	}
	p := page{total: b.Total, links: map[string]string{}}
	for _, l := range b.Link {
		p.links[l.Relation] = l.URL
	}
	for _, e := range b.Entry {
		if e.Search.Mode == "match" {
			p.matches++
		}
	}
	return p
}

// TestPageSize: without _count a page holds Config.DefaultCount matches,
// and _count above Config.MaxCount is cut down to it (R4 search.html#count:
// the server may return fewer than asked), with a next link either way
// when more matches exist.
func TestPageSize(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		t.Parallel()
		st := patientStore(t, newURL, 23)
		e := fhirsearch.New(fhirsearch.Config{Store: st, Base: "http://x/fhir", DefaultCount: 5, MaxCount: 10})
		for _, c := range []struct {
			name, query string
			matches     int
			next        bool
		}{
			{"default", "", 5, true},
			{"below the maximum", "_count=7", 7, true},
			{"at the maximum", "_count=10", 10, true},
			{"above the maximum", "_count=11", 10, true},
			{"far above the maximum", "_count=100000", 10, true},
			{"zero", "_count=0", 0, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				p := searchPage(t, e, "Patient", c.query)
				if p.matches != c.matches || (p.links["next"] != "") != c.next {
					t.Fatalf("%d matches, next %q; want %d matches, next %v", p.matches, p.links["next"], c.matches, c.next)
				}
				if c.next && p.total != nil {
					t.Fatalf("a first page without every match has total %d", *p.total)
				}
			})
		}
		// Following next links at the capped size reaches every match once.
		seen := 0
		for q, pages := "_count=50", 0; ; pages++ {
			p := searchPage(t, e, "Patient", q)
			if p.matches > 10 || pages > 5 {
				t.Fatalf("page %d: %d matches", pages, p.matches)
			}
			seen += p.matches
			if p.links["next"] == "" {
				break
			}
			u, err := url.Parse(p.links["next"])
			if err != nil {
				t.Fatal(err)
			}
			if u.Query().Get("_count") != "50" {
				t.Fatalf("next link %q lost _count", p.links["next"])
			}
			q = u.RawQuery
		}
		if seen != 23 {
			t.Fatalf("pages held %d matches, want 23", seen)
		}
		// A page that holds every match carries the total without _total.
		small := fhirsearch.New(fhirsearch.Config{Store: st, DefaultCount: 30, MaxCount: 40})
		if p := searchPage(t, small, "Patient", ""); p.matches != 23 || p.links["next"] != "" || p.total == nil || *p.total != 23 {
			t.Fatalf("one full page: %d matches, next %q, total %v", p.matches, p.links["next"], p.total)
		}
		// DefaultCount above MaxCount is cut to MaxCount as well.
		over := fhirsearch.New(fhirsearch.Config{Store: st, DefaultCount: 20, MaxCount: 4})
		if p := searchPage(t, over, "Patient", ""); p.matches != 4 {
			t.Fatalf("DefaultCount 20 with MaxCount 4: %d matches", p.matches)
		}
	})
}
