// Package app wires fhirgate together: configuration, store, services and
// the HTTP server, with Run and Close. The serve command is a thin shell
// around it, and tests and benchmarks start the real server in-process
// through it (WTF Dial's Main pattern).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fhirgate/fhirgate/internal/export"
	"github.com/fhirgate/fhirgate/internal/fhirapi"
	"github.com/fhirgate/fhirgate/internal/fhirsearch"
	"github.com/fhirgate/fhirgate/internal/httpapi"
	"github.com/fhirgate/fhirgate/internal/search/match"
	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

// Config is the server configuration (CONTRACT.md, "Build and start").
type Config struct {
	Addr             string
	BaseURL          string
	DB               string
	DataDir          string
	RootSecret       string
	AllowPrivateJWKS bool
	Demo             bool
	// MaxBodyBytes caps request bodies (default 16 MiB).
	MaxBodyBytes int64
	// ShutdownTimeout bounds the drain of in-flight requests on stop.
	ShutdownTimeout time.Duration
	// TokenRatePerClient and TokenRatePerAddress limit /auth/token in
	// requests per second (0: the defaults, 100 per client and 200 per
	// address, with bursts of five seconds' worth).
	TokenRatePerClient, TokenRatePerAddress float64
	// ClockLeeway is the clock skew allowed on a client assertion's exp,
	// nbf and iat (0: the default 60s; NoClockLeeway: none; at most 5m).
	ClockLeeway time.Duration
	// MaxTokenLifetime caps a client's access_token_expiration (0: the
	// default 5m, since SMART Backend Services says expires_in SHOULD NOT
	// exceed five minutes; 1m to 1h).
	MaxTokenLifetime time.Duration
	// SearchDefaultCount is the page size of a search without _count
	// (default 50); SearchMaxCount caps _count (default 1000).
	SearchDefaultCount, SearchMaxCount int
	Logger                             *slog.Logger
	// Stdout receives what --demo prints for the user (default os.Stdout).
	Stdout io.Writer
	// Export configures Bulk Data export (export.go).
	Export ExportConfig
}

// NoClockLeeway as Config.ClockLeeway allows no clock skew at all (the zero
// value means the default).
const NoClockLeeway = time.Duration(math.MinInt64)

// Bounds of the authorization server settings.
const (
	DefaultClockLeeway      = 60 * time.Second
	MaxClockLeeway          = 5 * time.Minute
	DefaultMaxTokenLifetime = 5 * time.Minute
	MinTokenLifetimeCap     = time.Minute
	MaxTokenLifetimeCap     = time.Hour
	DefaultSearchCount      = 50
	DefaultSearchMaxCount   = 1000
	// SearchMaxCountCap bounds --search-max-count: a page is loaded whole.
	SearchMaxCountCap = 10000
)

// ClockLeewayFlag turns the --clock-leeway value into Config.ClockLeeway,
// where 0s means none rather than the default.
func ClockLeewayFlag(d time.Duration) time.Duration {
	if d == 0 {
		return NoClockLeeway
	}
	return d
}

// withDefaults fills in what the contract leaves to defaults.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./fhirgate-data"
	}
	if c.DB == "" {
		c.DB = "sqlite:" + filepath.Join(c.DataDir, "fhirgate.db")
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.ClockLeeway == 0 {
		c.ClockLeeway = DefaultClockLeeway
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.SearchDefaultCount == 0 {
		c.SearchDefaultCount = DefaultSearchCount
	}
	if c.SearchMaxCount == 0 {
		c.SearchMaxCount = DefaultSearchMaxCount
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8080", c.Addr))
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		errs = append(errs, fmt.Errorf("--base-url %q: want an absolute http(s) URL", c.BaseURL))
	}
	if !strings.HasPrefix(c.DB, "sqlite:") && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		errs = append(errs, fmt.Errorf("--db: want sqlite:PATH or postgres://..."))
	}
	if c.ClockLeeway != NoClockLeeway && (c.ClockLeeway < 0 || c.ClockLeeway > MaxClockLeeway) {
		errs = append(errs, fmt.Errorf("--clock-leeway %s: want 0s to %s", c.ClockLeeway, MaxClockLeeway))
	}
	if c.MaxTokenLifetime < MinTokenLifetimeCap || c.MaxTokenLifetime > MaxTokenLifetimeCap {
		errs = append(errs, fmt.Errorf("--max-token-lifetime %s: want %s to %s", c.MaxTokenLifetime, MinTokenLifetimeCap, MaxTokenLifetimeCap))
	}
	if c.SearchMaxCount < 1 || c.SearchMaxCount > SearchMaxCountCap {
		errs = append(errs, fmt.Errorf("--search-max-count %d: want 1 to %d", c.SearchMaxCount, SearchMaxCountCap))
	}
	if c.SearchDefaultCount < 1 || c.SearchDefaultCount > c.SearchMaxCount {
		errs = append(errs, fmt.Errorf("--search-default-count %d: want 1 to --search-max-count (%d)", c.SearchDefaultCount, c.SearchMaxCount))
	}
	return errors.Join(errs...)
}

// App is a running fhirgate server.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    *sqlstore.Store
	fhir     *fhirapi.Service
	http     *httpapi.Server
	listener net.Listener
	server   *http.Server
	baseURL  string
	closers  []func() error
	auth     *authParts
	export   *export.Service
	// background holds the loops Run starts and stops with the server.
	background []func(ctx context.Context)
}

// New opens the store and builds the server; Run starts serving.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create --data-dir %s: %w", cfg.DataDir, err)
	}
	a := &App{cfg: cfg, log: cfg.Logger}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another server using the port? choose one with --addr)", cfg.Addr, err)
	}
	a.listener = ln
	a.closers = append(a.closers, func() error { ln.Close(); return nil })
	a.baseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if a.baseURL == "" {
		a.baseURL = "http://" + ln.Addr().String()
	}
	st, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{})
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	a.store = st
	a.closers = append(a.closers, st.Close)
	if err := a.build(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if cfg.Demo {
		if err := a.setupDemo(ctx); err != nil { // demo.go
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// build creates the services and the HTTP handler.
func (a *App) build(ctx context.Context) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.buildAuth(ctx); err != nil {
		return fmt.Errorf("authorization server: %w", err)
	}
	a.background = append(a.background, a.watchConfig, a.maintain)
	// Reads apply the query restrictions of SMART scopes on the version
	// they return, through the single-resource matcher.
	matcher := &match.Cache{Compiler: match.Compiler{Base: strings.TrimSuffix(a.baseURL, "/") + "/fhir"}}
	a.fhir = fhirapi.New(fhirapi.Config{Store: a.store, BaseURL: a.baseURL, Logger: a.log, Authorizer: a.auth.decider,
		Restrictor: a.auth.decider, Matcher: matcher})
	search := fhirsearch.New(fhirsearch.Config{Store: a.store, Base: a.fhir.Base(), Authorizer: a.auth.decider, Restrictor: a.auth.decider,
		DefaultCount: a.cfg.SearchDefaultCount, MaxCount: a.cfg.SearchMaxCount})
	a.fhir.SetSearcher(search)
	a.fhir.SetConditionalMatcher(search)
	a.fhir.AddCapabilities(search.Capabilities)
	mount, err := a.newExport(ctx)
	if err != nil {
		return fmt.Errorf("bulk export: %w", err)
	}
	a.http = httpapi.New(httpapi.Config{
		Mount:      mount,
		FHIR:       a.fhir,
		Store:      a.store,
		RootSecret: a.cfg.RootSecret,
		Auth:       a.auth.server,
		BaseURL:    a.baseURL,
		Admin:      adminCodec{},
		OnClientChange: func(id string) {
			a.auth.server.ClientChanged(id)
		},
		OnPolicyChange: func() {
			if err := a.reloadPolicies(context.Background()); err != nil {
				a.log.Error("reload access policies", "err", err)
			}
		},
		MaxBodyBytes: a.cfg.MaxBodyBytes,
		Logger:       a.log,
		Registerer:   reg,
		Gatherer:     reg,
		Started:      time.Now(),
	})
	// $reindex rebuilds search indexes: an admin operation, closed like the
	// admin API when there is no root secret.
	reindex := fhirsearch.ReindexOperation(a.store)
	reindex.RootOnly = true
	a.http.AddOperation(reindex)
	a.wireExport()
	a.server = &http.Server{
		Handler:           a.http,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// BaseURL is the public base URL (the FHIR base is BaseURL()+"/fhir").
func (a *App) BaseURL() string { return a.baseURL }

// Addr is the address the server listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Handler is the HTTP handler, for in-process tests.
func (a *App) Handler() http.Handler { return a.http }

// Store is the open store.
func (a *App) Store() *sqlstore.Store { return a.store }

// Run serves until ctx is cancelled, then drains in-flight requests for up
// to ShutdownTimeout and returns nil.
func (a *App) Run(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, loop := range a.background {
		wg.Add(1)
		go func() { defer wg.Done(); loop(bg) }()
	}
	defer func() { stopBG(); wg.Wait() }()
	errc := make(chan error, 1)
	go func() { errc <- a.server.Serve(a.listener) }()
	a.log.Info("fhirgate is serving", "addr", a.Addr(), "base_url", a.baseURL, "fhir", a.baseURL+"/fhir",
		"db", a.store.Dialect(), "root_enabled", a.cfg.RootSecret != "")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight requests", "timeout", a.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := a.server.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Close releases the store and the listener.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}
