package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/internal/authz"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/httpapi"
	"github.com/fhirgate/fhirgate/internal/store"
)

// Store is what the export needs from the database: the job records and
// snapshot scans, and current reads for the kick-off's checks.
type Store interface {
	store.ExportStore
	Read(ctx context.Context, typ, id string) (*store.Version, error)
}

// Matcher decides whether one resource matches a compiled set of search
// queries.
type Matcher interface {
	// Match reports whether body, a resource of the compiled type, matches
	// at least one of the queries.
	Match(ctx context.Context, body []byte) (bool, error)
}

// QueryMatcher is the seam to the search engine for _typeFilter and for
// query-restricted scopes. The export decides membership on the exact
// version of its snapshot, which the search index (of current versions)
// cannot do, so it asks for a matcher of single resources.
type QueryMatcher interface {
	// Compile prepares queries, FHIR searches on typ (each an AND of its
	// parameters; the queries are ORed), for Match. A query the engine
	// cannot evaluate on a single resource (unknown parameter, chain) is a
	// 400 *fhir.Error naming it.
	Compile(ctx context.Context, typ string, queries []url.Values) (Matcher, error)
}

// DownloadMode is how file requests are answered.
type DownloadMode string

// Download modes. Redirect answers a file request (after the token
// check) with 307 to a short-lived presigned URL of the object storage,
// which does not need the token (Bulk Data clients such as Inferno drop
// Authorization on redirects); Proxy streams the file through fhirgate.
const (
	DownloadProxy    DownloadMode = "proxy"
	DownloadRedirect DownloadMode = "redirect"
)

// Config configures a Service. Zero values get the defaults in brackets.
type Config struct {
	Store Store
	// BaseURL is the public base URL without /fhir; status and file URLs
	// are built from it.
	BaseURL string
	// Authorizer decides kick-off, status, cancel and download requests
	// [authz.RootOnly].
	Authorizer authz.Authorizer
	// Matcher evaluates _typeFilter and query-restricted scopes; nil means
	// _typeFilter is not supported (400, or ignored with a warning under
	// handling=lenient).
	Matcher QueryMatcher
	// Scopes gives the query restrictions of the caller's grant
	// (query-restricted SMART scopes) [authz.NoRestrictions].
	Scopes authz.Restrictor
	// Storage keeps finished files [required].
	Storage Storage
	// SpoolDir holds parts being written [required]; with LocalStorage it
	// must be on the same file system.
	SpoolDir string
	// Download chooses proxy or redirect [proxy]; redirect needs a storage
	// that presigns URLs.
	Download DownloadMode
	// PresignTTL is the lifetime of presigned URLs [1m].
	PresignTTL time.Duration
	// Retention is how long finished exports stay available [1h].
	Retention time.Duration
	// FileMaxResources and FileMaxBytes split a type into several files:
	// a file ends at whichever comes first [100000 resources, 256 MiB
	// uncompressed].
	FileMaxResources int64
	FileMaxBytes     int64
	// CheckpointEvery is the number of resources between checkpoints
	// within a file [50000].
	CheckpointEvery int
	// RangeRows is the number of history rows a range task of a full
	// export reads [500000]: larger exports are split into several tasks,
	// which workers of every process run in parallel.
	RangeRows int64
	// PageSize is the number of rows per database query [1000].
	PageSize int
	// PagePause is a pause after each page, to spread the load of large
	// exports over time (export.html: servers SHOULD mitigate DoS risk) [0].
	PagePause time.Duration
	// Workers is the number of tasks this process runs at once [2]: a
	// limit per process; servers sharing one database each run as many
	// (see Service.Run).
	Workers int
	// MaxPerClient is the number of running exports per client; more get
	// 429 at kick-off [3].
	MaxPerClient int
	// PollInterval is the Retry-After of status responses; polling faster
	// gets 429 [2s].
	PollInterval time.Duration
	// Lease is how long a worker holds a task without renewing it: after
	// a crash, the task resumes elsewhere after this long [30s].
	Lease time.Duration
	// IdleWait is how often an idle worker looks for work [1s].
	IdleWait time.Duration
	// SweepEvery is how often expired and cancelled exports are removed [1m].
	SweepEvery time.Duration
	// MaxBodyBytes bounds a POST kick-off's Parameters body [1 MiB].
	MaxBodyBytes int64
	Logger       *slog.Logger
	Now          func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.PresignTTL, time.Minute)
	def(&c.Retention, time.Hour)
	def(&c.PollInterval, 2*time.Second)
	def(&c.Lease, 30*time.Second)
	def(&c.IdleWait, time.Second)
	def(&c.SweepEvery, time.Minute)
	if c.Authorizer == nil {
		c.Authorizer = authz.RootOnly
	}
	if c.Scopes == nil {
		c.Scopes = authz.NoRestrictions
	}
	if c.Download == "" {
		c.Download = DownloadProxy
	}
	if c.FileMaxResources <= 0 {
		c.FileMaxResources = 100_000
	}
	if c.FileMaxBytes <= 0 {
		c.FileMaxBytes = 256 << 20
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 50_000
	}
	if c.RangeRows <= 0 {
		c.RangeRows = 500_000
	}
	if c.PageSize <= 0 {
		c.PageSize = 1000
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.MaxPerClient <= 0 {
		c.MaxPerClient = 3
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return c
}

// Service is the Bulk Data export: the HTTP handlers of kick-off, status,
// cancel and files, and the runner that does the work.
type Service struct {
	cfg   Config
	st    Store
	authz authz.Authorizer
	log   *slog.Logger
	now   func() time.Time
	// authenticate is httpapi.Server.Authenticate, set by Register.
	authenticate func(*http.Request) (*http.Request, error)
	// node names this process in leases (for the operator: which process
	// holds a task).
	node string
	wake chan struct{}
	// sweep asks the sweeper to run now (after a cancel).
	sweep chan struct{}

	mu        sync.Mutex
	downloads map[string]int // job id → downloads in flight here
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Store == nil:
		return nil, errors.New("export: Config.Store is required")
	case cfg.Storage == nil:
		return nil, errors.New("export: Config.Storage is required")
	case cfg.SpoolDir == "":
		return nil, errors.New("export: Config.SpoolDir is required")
	case cfg.BaseURL == "":
		return nil, errors.New("export: Config.BaseURL is required")
	case cfg.Download != DownloadProxy && cfg.Download != DownloadRedirect:
		return nil, fmt.Errorf("export: download mode %q: want proxy or redirect", cfg.Download)
	case cfg.Download == DownloadRedirect && !cfg.Storage.CanPresign():
		return nil, errors.New("export: the redirect download mode needs a storage that presigns URLs (s3)")
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("export: spool directory: %w", err)
	}
	host, _ := os.Hostname()
	return &Service{
		cfg: cfg, st: cfg.Store, authz: cfg.Authorizer, log: cfg.Logger, now: cfg.Now,
		node:      fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomID()[:8]),
		wake:      make(chan struct{}, cfg.Workers),
		sweep:     make(chan struct{}, 1),
		downloads: map[string]int{},
	}, nil
}

// randomID returns 128 random bits in hex: job ids are capability-like
// and must not be guessable.
func randomID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// Operations are the kick-off operations to register with
// httpapi.Server.AddOperation: $export at system level, on Patient, and on
// Group instances (export.html "Endpoint" sections).
func (s *Service) Operations() []httpapi.Operation {
	return []httpapi.Operation{
		{Name: "$export", Level: httpapi.SystemLevel, Handler: s.kickoffHandler(LevelSystem)},
		{Name: "$export", Level: httpapi.TypeLevel, Type: "Patient", Handler: s.kickoffHandler(LevelPatient)},
		{Name: "$export", Level: httpapi.InstanceLevel, Type: "Group", Handler: s.kickoffHandler(LevelGroup)},
	}
}

// Status and file routes, relative to the server root.
const (
	statusPath = "/fhir/$export-status/"
	filePath   = "/fhir/$export-file/"
)

// Mount adds the status and file routes; pass it in httpapi.Config.Mount.
func (s *Service) Mount(mux *http.ServeMux) {
	mux.HandleFunc(statusPath+"{id}", s.statusHandler)
	mux.HandleFunc(filePath+"{id}/{name}", s.fileHandler)
}

// Register attaches the service to the HTTP server: the kick-off
// operations, and the server's authentication for the mounted routes.
func (s *Service) Register(srv *httpapi.Server) {
	for _, op := range s.Operations() {
		srv.AddOperation(op)
	}
	s.authenticate = srv.Authenticate
}

func (s *Service) statusURL(id string) string { return s.cfg.BaseURL + statusPath + id }

func (s *Service) fileURL(id, name string) string {
	return s.cfg.BaseURL + filePath + id + "/" + name
}

// Canonical URLs of the Bulk Data IG 2.0 (E2.8: Inferno warns without them).
const (
	capabilityCanonical = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
	opDefBase           = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
)

// Capabilities adds the export to the CapabilityStatement; register it
// with fhirapi.Service.AddCapabilities.
func (s *Service) Capabilities(cs *fhirapi.CapabilityStatement) {
	cs.Instantiates = append(cs.Instantiates, capabilityCanonical)
	if len(cs.Rest) == 0 {
		return
	}
	rest := &cs.Rest[0]
	rest.Operation = append(rest.Operation, fhirapi.CapOperation{Name: "export", Definition: opDefBase + "export"})
	for i := range rest.Resource {
		switch rest.Resource[i].Type {
		case "Patient":
			rest.Resource[i].Operation = append(rest.Resource[i].Operation,
				fhirapi.CapOperation{Name: "export", Definition: opDefBase + "patient-export"})
		case "Group":
			rest.Resource[i].Operation = append(rest.Resource[i].Operation,
				fhirapi.CapOperation{Name: "export", Definition: opDefBase + "group-export"})
		}
	}
}

// notify wakes idle workers: new work is there.
func (s *Service) notify() {
	for i := 0; i < cap(s.wake); i++ {
		select {
		case s.wake <- struct{}{}:
		default:
			return
		}
	}
}

func (s *Service) downloadStarted(jobID string) func() {
	s.mu.Lock()
	s.downloads[jobID]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.downloads[jobID]--; s.downloads[jobID] == 0 {
			delete(s.downloads, jobID)
		}
		s.mu.Unlock()
	}
}

func (s *Service) downloading(jobID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads[jobID] > 0
}
