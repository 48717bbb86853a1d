package bench

import (
	"fmt"
	"strings"
	"time"
)

// Target is what issue 7 asks of a scenario on a 2-core machine with SQLite;
// PostgreSQL may be up to twice as slow.
type Target struct {
	// MinRate is the least throughput in the scenario's unit per second.
	MinRate float64 `json:"min_rate,omitempty"`
	// MaxP99 is the largest acceptable 99th percentile latency.
	MaxP99 time.Duration `json:"max_p99_ns,omitempty"`
	// MaxElapsed bounds the whole operation (export).
	MaxElapsed time.Duration `json:"max_elapsed_ns,omitempty"`
	// MaxRSS bounds the server's peak resident set, in bytes.
	MaxRSS int64 `json:"max_rss,omitempty"`
}

// exportPerMillion is the export target: 1M resources to NDJSON in 20 s,
// taken as linear in the number of resources at other sizes.
const exportPerMillion = 20 * time.Second

// targetFor returns the target of scenario for backend at resources.
func targetFor(scenario, backend string, resources int) Target {
	var t Target
	switch scenario {
	case ScenarioLoad:
		t = Target{MinRate: 10_000}
	case ScenarioToken:
		t = Target{MinRate: 6_000, MaxP99: 20 * time.Millisecond}
	case ScenarioRead:
		t = Target{MinRate: 15_000, MaxP99: 10 * time.Millisecond}
	case ScenarioSearchToken, ScenarioSearchDate, ScenarioSearchChain:
		t = Target{MinRate: 3_000, MaxP99: 50 * time.Millisecond}
	case ScenarioExport:
		t = Target{MaxElapsed: time.Duration(float64(exportPerMillion) * float64(resources) / 1e6), MaxRSS: 256 << 20}
	case ScenarioIngest:
		t = Target{MinRate: 3_000}
	}
	if backend == BackendPostgres {
		t.MinRate /= 2
		t.MaxP99 *= 2
		t.MaxElapsed *= 2
	}
	return t
}

// String renders the target for the report, e.g. "≥ 6,000/s, p99 ≤ 20 ms".
func (t Target) String() string {
	var parts []string
	if t.MinRate > 0 {
		parts = append(parts, "≥ "+thousands(t.MinRate)+"/s")
	}
	if t.MaxP99 > 0 {
		parts = append(parts, "p99 ≤ "+fmtDuration(t.MaxP99))
	}
	if t.MaxElapsed > 0 {
		parts = append(parts, "≤ "+fmtDuration(t.MaxElapsed))
	}
	if t.MaxRSS > 0 {
		parts = append(parts, "RSS ≤ "+fmtBytes(t.MaxRSS))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// Verdicts of a Result.
const (
	VerdictPass        = "pass"
	VerdictMiss        = "miss"
	VerdictUnavailable = "not available"
	VerdictError       = "error"
)

// judge sets r.Verdict and r.Misses against r.Target.
func (r *Result) judge() {
	if !r.Available {
		r.Verdict = VerdictUnavailable
		return
	}
	if r.Error != "" {
		r.Verdict = VerdictError
		return
	}
	t := r.Target
	r.Misses = nil
	if t.MinRate > 0 && r.Rate < t.MinRate {
		r.Misses = append(r.Misses, fmt.Sprintf("%s/s < %s/s", thousands(r.Rate), thousands(t.MinRate)))
	}
	if t.MaxP99 > 0 && r.Latency != nil && r.Latency.P99 > t.MaxP99 {
		r.Misses = append(r.Misses, fmt.Sprintf("p99 %s > %s", fmtDuration(r.Latency.P99), fmtDuration(t.MaxP99)))
	}
	if t.MaxElapsed > 0 && r.Elapsed > t.MaxElapsed {
		r.Misses = append(r.Misses, fmt.Sprintf("%s > %s", fmtDuration(r.Elapsed), fmtDuration(t.MaxElapsed)))
	}
	if t.MaxRSS > 0 && r.PeakRSS > t.MaxRSS {
		r.Misses = append(r.Misses, fmt.Sprintf("RSS %s > %s", fmtBytes(r.PeakRSS), fmtBytes(t.MaxRSS)))
	}
	if len(r.Failures) > 0 {
		r.Misses = append(r.Misses, "failures: "+failureList(r.Failures))
	}
	r.Verdict = VerdictPass
	if len(r.Misses) > 0 {
		r.Verdict = VerdictMiss
	}
}
