package loader_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/internal/loader"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
	"github.com/fhirgate/fhirgate/internal/store"
)

// writeFile writes content to dir/name, gzip-compressed when gz is set.
func writeFile(t testing.TB, dir, name, content string, gz bool) string {
	t.Helper()
	p := filepath.Join(dir, name)
	data := []byte(content)
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		data = b.Bytes()
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// patients returns n Patient lines with ids prefix-0 ... prefix-(n-1).
func patients(prefix string, n int) string {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"resourceType":"Patient","id":"%s-%d","name":[{"family":"F%d"}]}`+"\n", prefix, i, i)
	}
	return b.String()
}

func openStore(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func sources(t testing.TB, paths ...string) []loader.Source {
	t.Helper()
	srcs, err := loader.Files(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

// countLive counts the current, live resources per type, and the versions
// stored, by walking the whole history.
func countLive(t testing.TB, st store.ResourceStore) (live map[string]int, versions int) {
	t.Helper()
	ctx := context.Background()
	latest := map[string]store.Version{}
	q := store.HistoryQuery{Count: 1000}
	for {
		page, err := st.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			versions++
			k := v.Type + "/" + v.ID
			if _, seen := latest[k]; !seen { // newest first
				latest[k] = v
			}
		}
		if page.Next == nil {
			break
		}
		q.After = page.Next
	}
	live = map[string]int{}
	for _, v := range latest {
		if !v.Deleted {
			live[v.Type]++
		}
	}
	return live, versions
}

// progressLog collects progress reports.
type progressLog struct {
	mu       sync.Mutex
	reports  []loader.Progress
	finished []loader.FileResult
	invalid  []string
}

func (p *progressLog) opts(o loader.Options) loader.Options {
	o.OnProgress = func(pr loader.Progress) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.reports = append(p.reports, pr)
		if pr.Finished != nil {
			p.finished = append(p.finished, *pr.Finished)
		}
	}
	o.OnInvalid = func(le *loader.LineError) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.invalid = append(p.invalid, le.Error())
	}
	return o
}

// check verifies that reports only grow and end at the totals.
func (p *progressLog) check(t testing.TB, res *loader.Result, totalBytes int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reports) == 0 {
		t.Fatal("no progress reported")
	}
	var prev loader.Progress
	for _, r := range p.reports {
		if r.Resources < prev.Resources || r.Bytes < prev.Bytes || r.Invalid < prev.Invalid || r.Elapsed < prev.Elapsed {
			t.Fatalf("progress went back: %+v after %+v", r, prev)
		}
		if r.TotalBytes != totalBytes {
			t.Fatalf("TotalBytes %d, want %d", r.TotalBytes, totalBytes)
		}
		prev = r
	}
	if prev.Resources != res.Resources || prev.Invalid != res.Invalid || prev.Bytes != totalBytes {
		t.Fatalf("last progress %+v, result %+v, total bytes %d", prev, res, totalBytes)
	}
	if len(p.finished) != len(res.Files) {
		t.Fatalf("%d files finished, %d in result", len(p.finished), len(res.Files))
	}
}
