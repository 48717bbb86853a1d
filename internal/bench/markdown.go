package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// Markdown renders the report as a Markdown section (without markers): the
// machine, the command, one table per data set size with a row per
// scenario, notes, and the growth of export and search with size when the
// run had several sizes.
func (rep *Report) Markdown() string {
	var b strings.Builder
	backend := map[string]string{BackendSQLite: "SQLite", BackendPostgres: "PostgreSQL"}[rep.Backend]
	var sizes []string
	for _, r := range rep.Runs {
		sizes = append(sizes, thousands(float64(r.Resources)))
	}
	fmt.Fprintf(&b, "### Load harness: %s, %s resources\n\n", backend, strings.Join(sizes, " / "))
	m := rep.Machine
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s memory, %s (Linux %s), %s %s\n", m.CPU, m.Cores, fmtBytes(m.Memory), m.OS, m.Kernel, m.GoVersion, m.GOARCH)
	fmt.Fprintf(&b, "- Database: %s\n", rep.Database)
	fmt.Fprintf(&b, "- Run: %s to %s; load average before %s, after %s\n",
		rep.Started.Format("2006-01-02 15:04 MST"), rep.Finished.Format("15:04 MST"), rep.LoadBefore, rep.LoadAfter)
	fmt.Fprintf(&b, "- Command: `%s`\n", rep.CommandLine)
	fmt.Fprintf(&b, "- The load generator runs on the same cores as the server (%d connections with keep-alive, %s per timed scenario after a warm-up); the CPU column is the average number of cores used by the server / by the harness during the measurement.\n",
		rep.Concurrency, rep.Duration)
	for _, run := range rep.Runs {
		b.WriteString(run.markdown())
	}
	if len(rep.Runs) > 1 {
		b.WriteString(rep.growthMarkdown())
	}
	return b.String()
}

func (run SizeRun) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n#### %s resources (%s patients)\n\n", thousands(float64(run.Resources)), thousands(float64(run.Patients)))
	b.WriteString("| scenario | n | time | throughput | p50 | p90 | p99 | max | failures | peak RSS (at start) | CPU srv / harness | target | result |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	var notes []string
	for _, r := range run.Results {
		if !r.Available || r.Error != "" && r.Count == 0 {
			fmt.Fprintf(&b, "| %s | — | — | — | — | — | — | — | — | — | — | %s | %s |\n", r.Scenario, r.Target, verdictCell(r))
		} else {
			p50, p90, p99, mx := "—", "—", "—", "—"
			if r.Latency != nil {
				p50, p90, p99, mx = fmtDuration(r.Latency.P50), fmtDuration(r.Latency.P90), fmtDuration(r.Latency.P99), fmtDuration(r.Latency.Max)
			}
			fails := "0"
			if len(r.Failures) > 0 {
				fails = failureList(r.Failures)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s/s | %s | %s | %s | %s | %s | %s | %.2f / %.2f | %s | %s |\n",
				r.Scenario, thousands(float64(r.Count)), fmtDuration(r.Elapsed), thousands(r.Rate), r.Unit,
				p50, p90, p99, mx, fails, rssCell(r), r.CPUServer, r.CPUHarness, r.Target, verdictCell(r))
		}
		notes = append(notes, r.notes()...)
	}
	fmt.Fprintf(&b, "\nServer peak RSS over the whole run: %s.", fmtBytes(run.ServerPeakRSS))
	if run.DataGeneration > 0 {
		fmt.Fprintf(&b, " Generating the data set took %s (not measured in any row).", fmtDuration(run.DataGeneration))
	}
	b.WriteString("\n\n")
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
	return b.String()
}

// notes are the lines under the table about one result.
func (r Result) notes() []string {
	var n []string
	what := r.What
	if r.LatencyOf != "" && r.LatencyOf != "request" {
		what += "; latency per " + r.LatencyOf
	}
	if r.RSSOf != "" && r.RSSOf != "server" {
		what += "; peak RSS of the " + r.RSSOf
	}
	if r.Extra != "" {
		what += "; " + r.Extra
	}
	if what != "" {
		n = append(n, fmt.Sprintf("%s: %s.", r.Scenario, strings.TrimPrefix(what, "; ")))
	}
	if r.Note != "" {
		n = append(n, fmt.Sprintf("%s not available: %s", r.Scenario, r.Note))
	}
	if r.Error != "" {
		n = append(n, fmt.Sprintf("%s failed: %s", r.Scenario, r.Error))
	}
	if r.FailureExample != "" {
		n = append(n, fmt.Sprintf("%s failure example: %s", r.Scenario, r.FailureExample))
	}
	if len(r.Misses) > 0 {
		n = append(n, fmt.Sprintf("%s misses its target: %s.", r.Scenario, strings.Join(r.Misses, "; ")))
	}
	if r.Profile != "" {
		n = append(n, fmt.Sprintf("%s server CPU profile: `%s`.", r.Scenario, r.Profile))
	}
	return n
}

// rssCell is the peak RSS with the RSS at the start of the measurement.
func rssCell(r Result) string {
	if r.StartRSS <= 0 {
		return fmtBytes(r.PeakRSS)
	}
	return fmtBytes(r.PeakRSS) + " (" + fmtBytes(r.StartRSS) + ")"
}

func verdictCell(r Result) string {
	if r.Verdict == VerdictMiss || r.Verdict == VerdictError {
		return "**" + r.Verdict + "**"
	}
	return r.Verdict
}

// growthMarkdown is the table of how export and search cost grows with
// the data set: export time should grow linearly, search latency stay flat.
func (rep *Report) growthMarkdown() string {
	var b strings.Builder
	b.WriteString("\n#### Growth with the data set\n\n")
	b.WriteString("| resources | export time | export resources/s | export peak RSS | search-token p50 / p99 | search-date p50 / p99 | search-chain p50 / p99 |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, run := range rep.Runs {
		cells := []string{thousands(float64(run.Resources)), "—", "—", "—", "—", "—", "—"}
		for _, r := range run.Results {
			switch {
			case !r.Available || r.Error != "" || r.Count == 0:
			case r.Scenario == ScenarioExport:
				cells[1], cells[2], cells[3] = fmtDuration(r.Elapsed), thousands(r.Rate), fmtBytes(r.PeakRSS)
			case r.Latency == nil:
			case r.Scenario == ScenarioSearchToken:
				cells[4] = fmtDuration(r.Latency.P50) + " / " + fmtDuration(r.Latency.P99)
			case r.Scenario == ScenarioSearchDate:
				cells[5] = fmtDuration(r.Latency.P50) + " / " + fmtDuration(r.Latency.P99)
			case r.Scenario == ScenarioSearchChain:
				cells[6] = fmtDuration(r.Latency.P50) + " / " + fmtDuration(r.Latency.P99)
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// Section markers delimit the harness's part of a Markdown file, one pair
// per section name, so that a run replaces its own section and nothing else.
func sectionMarkers(name string) (begin, end string) {
	return "<!-- bench:begin " + name + " -->", "<!-- bench:end " + name + " -->"
}

// WriteSection puts body between the markers of section name in the
// Markdown file at path: replacing what the markers held, or appending the
// marked section at the end when the file has none. The file is created if
// missing; everything outside the markers is kept byte for byte.
func WriteSection(path, name, body string) error {
	if name == "" || strings.ContainsAny(name, "\n>") {
		return fmt.Errorf("bench: bad section name %q", name)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := replaceSection(old, name, body)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	tmp := path + ".bench-tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func replaceSection(old []byte, name, body string) ([]byte, error) {
	begin, end := sectionMarkers(name)
	block := begin + "\n" + strings.TrimRight(body, "\n") + "\n" + end
	i := bytes.Index(old, []byte(begin))
	j := bytes.Index(old, []byte(end))
	switch {
	case i < 0 && j < 0:
		var b bytes.Buffer
		b.Write(old)
		if len(old) > 0 {
			if !bytes.HasSuffix(old, []byte("\n")) {
				b.WriteByte('\n')
			}
			b.WriteByte('\n')
		}
		b.WriteString(block + "\n")
		return b.Bytes(), nil
	case i < 0 || j < i:
		return nil, fmt.Errorf("the markers of section %q are unbalanced; fix them by hand", name)
	}
	var b bytes.Buffer
	b.Write(old[:i])
	b.WriteString(block)
	b.Write(old[j+len(end):])
	return b.Bytes(), nil
}

// fmtDuration renders a duration with three significant digits in a
// readable unit.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + " µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + " ms"
	default:
		return sig3(d.Seconds()) + " s"
	}
}

// sig3 formats v (>= 1) with up to three significant digits: 20, 2.5,
// 1.25, 347.
func sig3(v float64) string {
	var s string
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// fmtBytes renders a byte count in binary units.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return sig3(float64(n)/float64(div)) + " " + string("KMGTPE"[exp]) + "iB"
}

// thousands renders v rounded to an integer with thousands separators.
func thousands(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
