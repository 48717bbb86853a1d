package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/fhirgate/fhirgate/internal/export"
	"github.com/fhirgate/fhirgate/internal/search/match"
)

// ExportConfig configures Bulk Data export (the serve flags --export-*).
// Zero values get the defaults of export.Config.
type ExportConfig struct {
	// Storage is "local" (files under Dir, the default) or "s3".
	Storage string
	// Dir holds local export files [<data-dir>/exports]. Several servers
	// on one database need it on a shared file system, or S3.
	Dir string
	// SpoolDir holds files being written [<Dir>/.spool for local storage,
	// <data-dir>/export-spool for s3].
	SpoolDir string
	S3       export.S3Config
	// Download is "proxy" (default) or "redirect" (307 to a presigned URL;
	// s3 only).
	Download         string
	PresignTTL       time.Duration
	Retention        time.Duration
	FileMaxResources int64
	FileMaxBytes     int64
	Workers          int
	MaxPerClient     int
	PollInterval     time.Duration
	Lease            time.Duration
	PagePause        time.Duration
	// Tuning for tests: see export.Config.
	CheckpointEvery int
	RangeRows       int64
	PageSize        int
	IdleWait        time.Duration
	SweepEvery      time.Duration

	// Matcher evaluates _typeFilter and query-restricted scopes on single
	// resources; nil: the search engine's (package match), which decides
	// exactly as a search would.
	Matcher export.QueryMatcher
}

func (c ExportConfig) withDefaults(dataDir string) ExportConfig {
	if c.Storage == "" {
		c.Storage = "local"
	}
	if c.Dir == "" {
		c.Dir = filepath.Join(dataDir, "exports")
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(c.Dir, ".spool")
		if c.Storage == "s3" {
			c.SpoolDir = filepath.Join(dataDir, "export-spool")
		}
	}
	if c.Download == "" {
		c.Download = string(export.DownloadProxy)
	}
	return c
}

func (c ExportConfig) validate() error {
	var errs []error
	switch c.Storage {
	case "local":
	case "s3":
		if c.S3.Endpoint == "" || c.S3.Bucket == "" {
			errs = append(errs, errors.New("--export-storage s3 needs --export-s3-endpoint and --export-s3-bucket"))
		}
	default:
		errs = append(errs, fmt.Errorf("--export-storage %q: want local or s3", c.Storage))
	}
	switch c.Download {
	case string(export.DownloadProxy):
	case string(export.DownloadRedirect):
		if c.Storage != "s3" {
			errs = append(errs, errors.New("--export-download redirect needs --export-storage s3 (local files are served through fhirgate)"))
		}
	default:
		errs = append(errs, fmt.Errorf("--export-download %q: want proxy or redirect", c.Download))
	}
	return errors.Join(errs...)
}

// ExportFlags defines the --export-* flags of serve on fs, bound to c, and
// returns their environment variables (flag name → FHIRGATE_*).
func ExportFlags(fs *pflag.FlagSet, c *ExportConfig) map[string]string {
	fs.StringVar(&c.Storage, "export-storage", "local", "where export files go: local (under --export-dir) or s3")
	fs.StringVar(&c.Dir, "export-dir", "", "directory of local export files (default <data-dir>/exports; shared by all servers of one database)")
	fs.StringVar(&c.S3.Endpoint, "export-s3-endpoint", "", "S3-compatible endpoint host[:port]")
	fs.StringVar(&c.S3.Bucket, "export-s3-bucket", "", "bucket of export files (must exist)")
	fs.StringVar(&c.S3.Region, "export-s3-region", "", "bucket region")
	fs.StringVar(&c.S3.Prefix, "export-s3-prefix", "", "key prefix of export files, e.g. fhirgate/")
	fs.StringVar(&c.S3.AccessKey, "export-s3-access-key", "", "S3 access key")
	fs.StringVar(&c.S3.SecretKey, "export-s3-secret-key", "", "S3 secret key (prefer FHIRGATE_EXPORT_S3_SECRET_KEY)")
	fs.BoolVar(&c.S3.Insecure, "export-s3-insecure", false, "talk plain HTTP to the S3 endpoint")
	fs.BoolVar(&c.S3.PathStyle, "export-s3-path-style", false, "use path-style bucket URLs")
	fs.StringVar(&c.Download, "export-download", "proxy", "file downloads: proxy (through fhirgate) or redirect (307 to a presigned S3 URL)")
	fs.DurationVar(&c.PresignTTL, "export-presign-ttl", time.Minute, "lifetime of presigned download URLs")
	fs.DurationVar(&c.Retention, "export-retention", time.Hour, "how long finished exports and their files are kept")
	fs.Int64Var(&c.FileMaxResources, "export-file-max-resources", 100_000, "resources per export file before a type is split")
	fs.Int64Var(&c.FileMaxBytes, "export-file-max-bytes", 256<<20, "uncompressed bytes per export file before a type is split")
	fs.IntVar(&c.Workers, "export-workers", 2, "export tasks this process runs at once")
	fs.IntVar(&c.MaxPerClient, "export-max-per-client", 3, "running exports per client; more get 429")
	fs.DurationVar(&c.PollInterval, "export-poll-interval", 2*time.Second, "Retry-After of export status; faster polls get 429")
	fs.DurationVar(&c.Lease, "export-lease", 30*time.Second, "how long a crashed server's export task waits before another resumes it")
	fs.DurationVar(&c.PagePause, "export-page-pause", 0, "pause after each 1000 exported rows, to spread the load of big exports")
	env := map[string]string{}
	for _, name := range []string{"export-storage", "export-dir", "export-s3-endpoint", "export-s3-bucket", "export-s3-region",
		"export-s3-prefix", "export-s3-access-key", "export-s3-secret-key", "export-s3-insecure", "export-s3-path-style",
		"export-download", "export-presign-ttl", "export-retention", "export-file-max-resources", "export-file-max-bytes",
		"export-workers", "export-max-per-client", "export-poll-interval", "export-lease", "export-page-pause"} {
		env[name] = "FHIRGATE_" + envName(name)
	}
	return env
}

func envName(flag string) string {
	b := []byte(flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// newExport builds the export service, with the FHIR API's authorizer
// and restrictions, and returns the routes to mount. Its runner starts
// and stops with the server (App.background).
func (a *App) newExport(ctx context.Context) ([]func(*http.ServeMux), error) {
	c := a.cfg.Export.withDefaults(a.cfg.DataDir)
	if err := c.validate(); err != nil {
		return nil, err
	}
	var storage export.Storage
	var err error
	if c.Storage == "s3" {
		storage, err = export.NewS3Storage(ctx, c.S3)
	} else {
		storage, err = export.NewLocalStorage(c.Dir)
	}
	if err != nil {
		return nil, err
	}
	if c.Matcher == nil {
		c.Matcher = exportMatcher{match.Compiler{Base: a.fhir.Base()}}
	}
	a.export, err = export.New(export.Config{
		Store: a.store, BaseURL: a.baseURL, Authorizer: a.auth.decider, Scopes: a.auth.decider, Matcher: c.Matcher,
		Storage: storage, SpoolDir: c.SpoolDir, Download: export.DownloadMode(c.Download), PresignTTL: c.PresignTTL,
		Retention: c.Retention, FileMaxResources: c.FileMaxResources, FileMaxBytes: c.FileMaxBytes,
		CheckpointEvery: c.CheckpointEvery, RangeRows: c.RangeRows, PageSize: c.PageSize, PagePause: c.PagePause, Workers: c.Workers,
		MaxPerClient: c.MaxPerClient, PollInterval: c.PollInterval, Lease: c.Lease, IdleWait: c.IdleWait,
		SweepEvery: c.SweepEvery, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	a.background = append(a.background, func(ctx context.Context) { a.export.Run(ctx) })
	return []func(*http.ServeMux){a.export.Mount}, nil
}

// exportMatcher is package match at the export's QueryMatcher seam.
type exportMatcher struct{ c match.Compiler }

func (e exportMatcher) Compile(_ context.Context, typ string, queries []url.Values) (export.Matcher, error) {
	m, err := e.c.Compile(typ, queries)
	if err != nil {
		return nil, err
	}
	return match.ContextMatcher{M: m}, nil
}

// wireExport registers the kick-off operations and the CapabilityStatement
// entries once the HTTP server exists.
func (a *App) wireExport() {
	a.export.Register(a.http)
	a.fhir.AddCapabilities(a.export.Capabilities)
}

// Export is the Bulk Data export service.
func (a *App) Export() *export.Service { return a.export }
