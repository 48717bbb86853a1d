package sqlstore

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/search"
	"github.com/fhirgate/fhirgate/internal/testdb"
)

// windowData: points, days, months, periods, open ends, Timing events
// with several dates in one window, equal dates on several resources,
// and a resource updated so that its old dates must not count.
func windowData() []string {
	obs := func(id, effective string) string {
		return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","code":{"text":"x"},%s}`, id, effective)
	}
	data := []string{
		obs("point-03", `"effectiveDateTime":"2024-03-03T10:00:00Z"`),
		obs("day-07", `"effectiveDateTime":"2024-03-07"`),
		obs("lower-edge", `"effectiveDateTime":"2024-03-01T00:00:00Z"`),
		obs("before", `"effectiveDateTime":"2024-02-28T23:59:59Z"`),
		obs("after", `"effectiveDateTime":"2024-04-09"`),
		obs("month", `"effectiveDateTime":"2024-03"`),
		obs("period-in", `"effectivePeriod":{"start":"2024-03-02","end":"2024-03-05"}`),
		obs("period-around", `"effectivePeriod":{"start":"2023-01-01","end":"2025-01-01"}`),
		obs("open-end", `"effectivePeriod":{"start":"2022-01-01"}`),
		obs("open-start", `"effectivePeriod":{"end":"2024-03-04"}`),
		obs("timing", `"effectiveTiming":{"event":["2024-03-20","2024-03-05T08:00:00Z","2024-03-05T08:00:00Z","2023-01-01"]}`),
		obs("moved", `"effectiveDateTime":"2024-03-02"`),
	}
	for i := range 9 { // the same instant on several resources
		data = append(data, obs(fmt.Sprintf("same-%d", i), `"effectiveDateTime":"2024-03-10T12:00:00Z"`))
	}
	for d := 1; d <= 31; d += 2 {
		data = append(data, obs(fmt.Sprintf("daily-%02d", d), fmt.Sprintf(`"effectiveDateTime":"2024-03-%02dT06:00:00Z"`, d)))
	}
	return data
}

// TestDateWindowPaging: a date window alone pages in date order (on
// both backends), page by page forward and back, and
// every way of paging returns each match exactly once: the same set as
// one big page.
func TestDateWindowPaging(t *testing.T) {
	testdb.Each(t, func(t *testing.T, newURL func(testing.TB) string) {
		s := openTest(t, newURL)
		for _, b := range windowData() {
			put(t, s, b)
		}
		// moved leaves the window; its old index rows must be gone.
		put(t, s, `{"resourceType":"Observation","id":"moved","status":"final","code":{"text":"x"},"effectiveDateTime":"2025-01-01"}`)
		for _, raw := range []string{
			"date=ge2024-03-01&date=lt2024-04-01",
			"date=gt2024-03-02&date=le2024-03-10T12:00:00Z",
			"date=ge2024-03-05&date=lt2024-03-06",
			"date=ge2030-01-01&date=lt2031-01-01",
		} {
			all := ids(t, s, "Observation", raw, SearchSpec{Count: 1000})
			// The same criteria with one more (always true) parameter
			// are paged in rid order: the same set.
			if truth := ids(t, s, "Observation", raw+"&code:text=x", SearchSpec{Count: 1000}); !slices.Equal(all, truth) {
				t.Fatalf("%s: %v\nin rid order: %v", raw, all, truth)
			}
			if slices.Contains(all, "moved") || slices.Contains(all, "before") {
				t.Fatalf("%s: %v holds a resource outside the window", raw, all)
			}
			for _, size := range []int{1, 2, 3, 7} {
				forward, cursors := pages(t, s, raw, size)
				if got := sorted(forward); !slices.Equal(got, all) {
					t.Fatalf("%s, pages of %d: %v\nwant the set %v", raw, size, forward, all)
				}
				checkDateOrder(t, s, raw, forward)
				// Back from the last page, through the prev links.
				back := backward(t, s, raw, size, cursors)
				if !slices.Equal(back, forward) {
					t.Fatalf("%s, pages of %d backward: %v\nforward: %v", raw, size, back, forward)
				}
			}
		}
		// A cursor of rid order is refused by a window search and the
		// other way round, with the error of a bad cursor.
		_, cursors := pages(t, s, "date=ge2024-03-01&date=lt2024-04-01", 2)
		{
			if _, err := search1(s, "date=ge2024-03-01&date=lt2024-04-01&code:text=x", 2, cursors[1]); err == nil {
				t.Fatal("a window cursor continued a search in rid order")
			}
			_, ridCursors := pages(t, s, "date=ge2024-03-01&date=lt2024-04-01&code:text=x", 2)
			if _, err := search1(s, "date=ge2024-03-01&date=lt2024-04-01", 2, ridCursors[1]); err == nil {
				t.Fatal("a rid-order cursor continued a date-window search")
			}
		}
	})
}

func search1(s *Store, raw string, count int, cursor string) (*SearchPage, error) {
	vals, _ := url.ParseQuery(raw)
	q, _, err := search.ParseQuery("Observation", vals, true)
	if err != nil {
		return nil, err
	}
	return s.Search(context.Background(), SearchSpec{Query: q, Count: count, Cursor: cursor})
}

// pages follows next links; cursors[i] is the cursor that led to page i
// ("" for the first).
func pages(t *testing.T, s *Store, raw string, size int) (out, cursors []string) {
	t.Helper()
	cursor := ""
	for n := 0; ; n++ {
		if n > 200 {
			t.Fatalf("%s: paging does not end", raw)
		}
		p, err := search1(s, raw, size, cursor)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if len(p.Matches) > size {
			t.Fatalf("%s: page of %d for _count=%d", raw, len(p.Matches), size)
		}
		cursors = append(cursors, cursor)
		for _, m := range p.Matches {
			out = append(out, m.ID)
		}
		if p.Next == "" {
			return out, cursors
		}
		cursor = p.Next
	}
}

// backward starts at the last page and follows prev links to the first.
func backward(t *testing.T, s *Store, raw string, size int, cursors []string) []string {
	t.Helper()
	p, err := search1(s, raw, size, cursors[len(cursors)-1])
	if err != nil {
		t.Fatal(err)
	}
	var chunks [][]string
	for n := 0; ; n++ {
		var ids []string
		for _, m := range p.Matches {
			ids = append(ids, m.ID)
		}
		chunks = append(chunks, ids)
		if p.Prev == "" || n > 200 {
			break
		}
		if p, err = search1(s, raw, size, p.Prev); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for i := len(chunks) - 1; i >= 0; i-- {
		out = append(out, chunks[i]...)
	}
	return out
}

// checkDateOrder: each resource's earliest date inside the window never
// decreases along the pages.
func checkDateOrder(t *testing.T, s *Store, raw string, order []string) {
	t.Helper()
	c := &compiler{s: s, now: s.now()}
	vals, _ := url.ParseQuery(raw)
	q, _, _ := search.ParseQuery("Observation", vals, true)
	m, err := c.match(q.Type, q.Where, SearchSpec{})
	if err != nil || m.window == nil {
		t.Fatalf("%s: no date window (%v)", raw, err)
	}
	w := m.window
	first := map[string]int64{}
	rows, err := s.r.Query(s.d.rebind(`SELECT r.id, MIN(a.low) FROM idx_date a JOIN resources r ON r.rid = a.rid WHERE `+expand(w.cond, "a")+` GROUP BY r.id`), w.args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var low int64
		rows.Scan(&id, &low)
		first[id] = low
	}
	for i := 1; i < len(order); i++ {
		if first[order[i]] < first[order[i-1]] {
			t.Fatalf("%s: %s (%d) after %s (%d): not in date order\n%s", raw, order[i], first[order[i]], order[i-1], first[order[i-1]], strings.Join(order, " "))
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestDateWindowPlan: on SQLite the narrow rows come from idx_date_narrow
// in date order (at most the rid ties are sorted), so a page costs the
// rows it returns rather than every row of the window.
func TestDateWindowPlan(t *testing.T) {
	s := openTest(t, func(tb testing.TB) string { return testdb.SQLiteURL(tb) })
	for _, b := range windowData() {
		put(t, s, b)
	}
	c := &compiler{s: s, now: s.now()}
	vals, _ := url.ParseQuery("date=ge2024-03-01&date=lt2024-04-01")
	q, _, _ := search.ParseQuery("Observation", vals, true)
	m, err := c.match(q.Type, q.Where, SearchSpec{})
	if err != nil || m.window == nil {
		t.Fatalf("no date window: %v", err)
	}
	for _, cur := range []*cursor{nil, {keys: []any{int64(1)}, rid: 1}, {backward: true, keys: []any{int64(1)}, rid: 1}} {
		text, args := c.windowSQL(m.window, cur, 21)
		rows, err := s.r.Query("EXPLAIN QUERY PLAN "+text, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "\n")
		left, _, _ := strings.Cut(joined, "RIGHT")
		if !strings.Contains(left, "idx_date_narrow") || strings.Contains(left, "USE TEMP B-TREE FOR ORDER BY") {
			t.Fatalf("narrow rows are not read in date order:\n%s", joined)
		}
	}
}
