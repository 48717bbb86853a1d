package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/client/bulk"
	"github.com/fhirgate/fhirgate/fhir"
)

func init() { register(newExportCmd) }

// exportOptions are the export command's own flags.
type exportOptions struct {
	group        string
	patient      bool
	types        []string
	since        string
	out          string
	typeFilters  []string
	elements     []string
	outputFormat string
	patients     []string
	associated   []string
	parallel     int
	maxWait      time.Duration
	cleanup      bool
}

// newExportCmd builds `fhirgate export`: a whole Bulk Data export to disk.
func newExportCmd() *cobra.Command {
	var (
		cf *clientFlags
		o  exportOptions
	)
	cmd := &cobra.Command{
		Use:   "export --server BASE --client-id ID --key private.pem [--kid KID] [--group ID | --patient] [--type T,...] [--since INSTANT] --out DIR",
		Short: "Run a FHIR Bulk Data export and write the NDJSON files to a directory",
		Long: `Run a whole FHIR Bulk Data export: get a token (SMART Backend Services),
kick off the export at system level, for all patients (--patient) or for a
Group (--group ID), wait for it while honouring the server's Retry-After,
and download every file into DIR as TYPE.ndjson (TYPE.2.ndjson and so on
when a type spans several files; error and deleted files get an "error." or
"deleted." prefix), with the manifest as DIR/manifest.json.

Downloads run --parallel at a time, resume after a dropped connection,
accept gzip, and are checked against the manifest's counts. Tokens are
renewed while the export runs. Ctrl-C cancels the export on the server too.
On a terminal a progress bar shows files, resources and bytes; otherwise
progress goes to stderr as log lines.

--server, --client-id and --key may also come from FHIRGATE_SERVER,
FHIRGATE_CLIENT_ID and FHIRGATE_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := o.request()
			if err != nil {
				return err
			}
			if o.out == "" {
				return usageError("export: --out is required: name the directory for the NDJSON files, e.g. --out ./export")
			}
			ts, err := cf.tokenSource(cmd)
			if err != nil {
				return err
			}
			c := bulk.New(strings.TrimRight(cf.server, "/"), ts.Client())
			c.Parallel, c.Poll.MaxWait, c.Cleanup = o.parallel, o.maxWait, o.cleanup
			view := newProgressView(cmd.ErrOrStderr())
			c.OnProgress = view.update
			start := time.Now()
			res, err := c.Export(cmd.Context(), req, o.out)
			view.finish()
			if err != nil {
				return cf.explain(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d resources in %d files (%s) to %s in %s\n",
				res.Resources, len(res.Files), humanBytes(res.Bytes), res.Dir, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cf = addClientFlags(cmd, "export")
	f := cmd.Flags()
	f.StringVar(&o.group, "group", "", "export the members of this Group (Group/ID/$export)")
	f.BoolVar(&o.patient, "patient", false, "export all patients (Patient/$export)")
	f.StringSliceVar(&o.types, "type", nil, "resource types to export (_type), comma-separated or repeated")
	f.StringVar(&o.since, "since", "", "only resources changed after this instant (_since), e.g. 2024-01-31T00:00:00Z or 2024-01-31")
	f.StringVar(&o.out, "out", "", "directory for the NDJSON files and manifest.json (created if missing)")
	f.StringArrayVar(&o.typeFilters, "type-filter", nil, "a _typeFilter query such as 'Observation?category=laboratory'; repeat for more")
	f.StringSliceVar(&o.elements, "elements", nil, "elements to keep (_elements), e.g. id,Patient.name")
	f.StringVar(&o.outputFormat, "output-format", "", "_outputFormat (the server's default is application/fhir+ndjson)")
	f.StringSliceVar(&o.patients, "patient-ref", nil, "limit a --patient or --group export to these patients, e.g. Patient/123 (sent as a POST)")
	f.StringSliceVar(&o.associated, "include-associated-data", nil, "includeAssociatedData codes, e.g. LatestProvenanceResources")
	f.IntVar(&o.parallel, "parallel", 4, "files downloaded at once")
	f.DurationVar(&o.maxWait, "max-wait", 0, "give up (and cancel the export on the server) after this long, e.g. 2h; 0 waits forever")
	f.BoolVar(&o.cleanup, "cleanup", false, "tell the server it may delete the files once they are downloaded")
	cmd.MarkFlagsMutuallyExclusive("group", "patient")
	return cmd
}

// request checks the flags and builds the kick-off.
func (o exportOptions) request() (bulk.Request, error) {
	req := bulk.Request{GroupID: o.group, OutputFormat: o.outputFormat, Types: o.types,
		Elements: o.elements, TypeFilters: o.typeFilters, Patients: o.patients, IncludeAssociatedData: o.associated}
	if o.patient {
		req.Level = bulk.Patient
	}
	if len(o.patients) > 0 && o.group == "" && !o.patient {
		return req, usageError("export: --patient-ref needs --patient or --group: a system export cannot be limited to patients")
	}
	if o.parallel < 1 {
		return req, usageError("export: --parallel must be at least 1, got %d", o.parallel)
	}
	for _, t := range o.types {
		if !fhir.IsResourceType(t) {
			return req, usageError("export: --type %q is not a FHIR R4 resource type; check the spelling (e.g. Patient,Observation)", t)
		}
	}
	if o.since != "" {
		t, err := parseSince(o.since)
		if err != nil {
			return req, usageError("export: --since %q is not an instant; use e.g. 2024-01-31T00:00:00Z or 2024-01-31", o.since)
		}
		req.Since = t
	}
	return req, nil
}

// parseSince reads a FHIR instant, or a date taken as midnight UTC.
func parseSince(s string) (time.Time, error) {
	if t, err := fhir.ParseInstant(s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

// progressView shows export progress: a bar on a terminal, log lines otherwise.
type progressView struct {
	bar     *progressbar.ProgressBar
	log     *slog.Logger
	phase   bulk.Phase
	message string
}

func newProgressView(stderr io.Writer) *progressView {
	v := &progressView{}
	if isTerminal(stderr) {
		v.bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("export: kicking off"),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	} else {
		v.log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	return v
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (v *progressView) update(p bulk.Progress) {
	if v.bar != nil {
		v.updateBar(p)
		return
	}
	switch {
	case p.Phase == bulk.PhaseWaiting && (p.Phase != v.phase || p.Message != v.message):
		v.log.Info("export running on the server", "progress", p.Message, "polls", p.Polls)
	case p.Phase == bulk.PhaseComplete:
		v.log.Info("export complete on the server", "files", p.FilesTotal)
	case p.Phase == bulk.PhaseDownloading && p.File != nil:
		v.log.Info("downloaded", "file", p.File.Path, "resources", p.File.Resources, "bytes", p.File.Bytes,
			"done", fmt.Sprintf("%d/%d", p.FilesDone, p.FilesTotal))
	}
	v.phase, v.message = p.Phase, p.Message
}

func (v *progressView) updateBar(p bulk.Progress) {
	switch p.Phase {
	case bulk.PhaseWaiting:
		v.bar.Describe("export: waiting for the server " + p.Message)
		v.bar.Add(0)
	case bulk.PhaseComplete, bulk.PhaseDownloading:
		if p.FilesTotal > 0 && v.bar.GetMax() != p.FilesTotal {
			v.bar.ChangeMax(p.FilesTotal)
		}
		if p.FilesTotal > 0 {
			v.bar.Set(p.FilesDone)
		}
		v.bar.Describe(fmt.Sprintf("export: %d/%d files, %d resources, %s", p.FilesDone, p.FilesTotal, p.Resources, humanBytes(p.Bytes)))
	}
}

func (v *progressView) finish() {
	if v.bar != nil {
		v.bar.Exit()
	}
}

// humanBytes renders a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
