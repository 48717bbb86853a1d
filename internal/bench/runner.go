package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errNoMoreWork ends a worker early: the token scenario's pre-signed
// assertions ran out.
var errNoMoreWork = errors.New("bench: no more work")

// doFunc sends request number i (counted from 0 over the whole run) and
// says whether it succeeded. A failure is reported by kind: "HTTP 503" or
// "transport" with err set.
type doFunc func(ctx context.Context, i int64) (failure string, err error)

// closedLoop is the outcome of one closed-loop run: N workers each sending
// the next request as soon as the previous one is answered.
type closedLoop struct {
	Hist     Histogram
	OK       int64
	Failures map[string]int64
	// FirstError is an example failure message per kind.
	FirstError map[string]string
	Elapsed    time.Duration
}

// phaseHooks run between the warm-up and the measurement (start) and after
// it (end), e.g. to reset the server's peak RSS and read CPU counters.
type phaseHooks struct {
	start, end func()
}

// runClosedLoop runs do on concurrency workers: first for warmup without
// recording, then for duration, recording the latency of every success and
// counting failures by kind. Requests started before the deadline are
// waited for and counted. Throughput is OK/Elapsed.
func runClosedLoop(ctx context.Context, concurrency int, warmup, duration time.Duration, do doFunc, hooks phaseHooks) *closedLoop {
	var next atomic.Int64
	if warmup > 0 {
		phase(ctx, concurrency, warmup, &next, do, nil)
	}
	if hooks.start != nil {
		hooks.start()
	}
	results := make([]*closedLoop, concurrency)
	for i := range results {
		results[i] = &closedLoop{Failures: map[string]int64{}, FirstError: map[string]string{}}
	}
	t0 := time.Now()
	phase(ctx, concurrency, duration, &next, do, results)
	elapsed := time.Since(t0)
	if hooks.end != nil {
		hooks.end()
	}
	out := &closedLoop{Failures: map[string]int64{}, FirstError: map[string]string{}, Elapsed: elapsed}
	for _, r := range results {
		out.Hist.Merge(&r.Hist)
		out.OK += r.OK
		for k, v := range r.Failures {
			out.Failures[k] += v
			if _, ok := out.FirstError[k]; !ok {
				out.FirstError[k] = r.FirstError[k]
			}
		}
	}
	return out
}

// phase runs the workers for d; results nil means warm-up.
func phase(ctx context.Context, concurrency int, d time.Duration, next *atomic.Int64, do doFunc, results []*closedLoop) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res *closedLoop
			if results != nil {
				res = results[w]
			}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				kind, err := do(ctx, next.Add(1)-1)
				lat := time.Since(t0)
				if errors.Is(err, errNoMoreWork) {
					return
				}
				if res == nil {
					continue
				}
				if kind == "" && err == nil {
					res.OK++
					res.Hist.Record(lat)
					continue
				}
				if kind == "" {
					kind = "error"
				}
				res.Failures[kind]++
				if _, ok := res.FirstError[kind]; !ok && err != nil {
					res.FirstError[kind] = err.Error()
				}
			}
		}()
	}
	wg.Wait()
}

// loadClient is the load generator's HTTP client: keep-alive with an idle
// connection per worker and then some, so that no request pays for a new
// connection; no overall timeout (requests carry contexts).
func loadClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2*concurrency + 16
	tr.MaxIdleConnsPerHost = 2*concurrency + 16
	tr.MaxConnsPerHost = 0
	tr.IdleConnTimeout = 5 * time.Minute
	return &http.Client{Transport: tr}
}

// send sends req, drains the body and checks the status.
func send(hc *http.Client, req *http.Request, want int) (string, error) {
	resp, err := hc.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return "cancelled", err
		}
		return "transport", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Sprintf("HTTP %d", resp.StatusCode), fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, oneLine(string(b)))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return "transport", err
	}
	return "", nil
}

// oneLine folds text onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// failureList renders failures as "HTTP 503 ×12, transport ×1", most
// frequent first.
func failureList(f map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range f {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s ×%d", e.k, e.v)
	}
	return strings.Join(parts, ", ")
}
