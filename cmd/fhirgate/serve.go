package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fhirgate/fhirgate/internal/app"
)

func init() { register(newServeCmd) }

// envDefaults fills flags the user did not set from FHIRGATE_* environment
// variables: a flag on the command line wins over the environment, which
// wins over the default.
func envDefaults(fs *pflag.FlagSet, env map[string]string) error {
	for name, key := range env {
		f := fs.Lookup(name)
		v, ok := os.LookupEnv(key)
		if f == nil || f.Changed || !ok {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return &exitError{code: 2, err: errorf("%s=%q: %v", key, v, err)}
		}
	}
	return nil
}

// serveEnv names the environment variable of every serve flag except the
// --export-* ones, whose names app.ExportFlags returns (README
// "Configuration": every flag has one).
var serveEnv = map[string]string{
	"addr": "FHIRGATE_ADDR", "base-url": "FHIRGATE_BASE_URL", "db": "FHIRGATE_DB",
	"data-dir": "FHIRGATE_DATA_DIR", "root-secret": "FHIRGATE_ROOT_SECRET",
	"allow-private-jwks": "FHIRGATE_ALLOW_PRIVATE_JWKS", "demo": "FHIRGATE_DEMO",
	"log-format": "FHIRGATE_LOG_FORMAT", "log-level": "FHIRGATE_LOG_LEVEL", "max-body": "FHIRGATE_MAX_BODY",
	"token-rate-client": "FHIRGATE_TOKEN_RATE_CLIENT", "token-rate-address": "FHIRGATE_TOKEN_RATE_ADDRESS",
	"clock-leeway": "FHIRGATE_CLOCK_LEEWAY", "max-token-lifetime": "FHIRGATE_MAX_TOKEN_LIFETIME",
	"shutdown-timeout":     "FHIRGATE_SHUTDOWN_TIMEOUT",
	"search-default-count": "FHIRGATE_SEARCH_DEFAULT_COUNT", "search-max-count": "FHIRGATE_SEARCH_MAX_COUNT",
}

func newServeCmd() *cobra.Command {
	var cfg app.Config
	var logFormat, logLevel string
	var maxBody int64
	var leeway time.Duration
	var exportEnv map[string]string // --export-* flags → FHIRGATE_EXPORT_*
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the FHIR server and its SMART Backend Services authorization server",
		Long: `Run the FHIR R4 server with its SMART Backend Services authorization server.

Every flag can also come from an environment variable (FHIRGATE_ADDR,
FHIRGATE_BASE_URL, FHIRGATE_DB, FHIRGATE_DATA_DIR, FHIRGATE_ROOT_SECRET,
FHIRGATE_ALLOW_PRIVATE_JWKS, FHIRGATE_DEMO, FHIRGATE_LOG_FORMAT,
FHIRGATE_LOG_LEVEL, FHIRGATE_MAX_BODY, FHIRGATE_TOKEN_RATE_CLIENT,
FHIRGATE_TOKEN_RATE_ADDRESS, FHIRGATE_CLOCK_LEEWAY, FHIRGATE_MAX_TOKEN_LIFETIME,
FHIRGATE_SHUTDOWN_TIMEOUT, FHIRGATE_SEARCH_DEFAULT_COUNT,
FHIRGATE_SEARCH_MAX_COUNT, and FHIRGATE_EXPORT_* for the --export-* flags);
a flag on the command line wins.

The server is ready when GET /health answers 200. SIGTERM or Ctrl-C drains
in-flight requests and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd.Flags(), serveEnv); err != nil {
				return err
			}
			if err := envDefaults(cmd.Flags(), exportEnv); err != nil {
				return err
			}
			logger, err := app.NewLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.MaxBodyBytes = maxBody
			cfg.ClockLeeway = app.ClockLeewayFlag(leeway)
			a, err := app.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	exportEnv = app.ExportFlags(f, &cfg.Export)
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address HOST:PORT")
	f.StringVar(&cfg.BaseURL, "base-url", "", "public base URL (default http://<addr>); token aud, Location, status and file URLs are built from it")
	f.StringVar(&cfg.DB, "db", "", "database: sqlite:PATH or postgres://user:pass@host/db (default sqlite:<data-dir>/fhirgate.db)")
	f.StringVar(&cfg.DataDir, "data-dir", "./fhirgate-data", "directory for keys, export files and the embedded database")
	f.StringVar(&cfg.RootSecret, "root-secret", "", "secret of the built-in root client (HTTP Basic root:<secret>); without it the admin API answers 401")
	f.BoolVar(&cfg.AllowPrivateJWKS, "allow-private-jwks", false, "let a client's jwks_uri point at loopback or private addresses")
	f.BoolVar(&cfg.Demo, "demo", false, "load the synthetic demo data set, register a demo backend client and print how to use them")
	f.StringVar(&logFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.Int64Var(&maxBody, "max-body", 16<<20, "largest accepted request body in bytes")
	f.Float64Var(&cfg.TokenRatePerClient, "token-rate-client", 0, "token requests per second allowed per client id (default 100, burst 5 s worth)")
	f.Float64Var(&cfg.TokenRatePerAddress, "token-rate-address", 0, "token requests per second allowed per remote address (default 200, burst 5 s worth)")
	f.DurationVar(&leeway, "clock-leeway", app.DefaultClockLeeway, "clock skew allowed on client assertions' exp, nbf and iat (0s to 5m)")
	f.DurationVar(&cfg.MaxTokenLifetime, "max-token-lifetime", app.DefaultMaxTokenLifetime, "cap on a client's access_token_expiration (1m to 1h)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	f.IntVar(&cfg.SearchDefaultCount, "search-default-count", app.DefaultSearchCount, "page size of a search without _count")
	f.IntVar(&cfg.SearchMaxCount, "search-max-count", app.DefaultSearchMaxCount, "largest _count a search honours (larger ones are cut to it)")
	return cmd
}
