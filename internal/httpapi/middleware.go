package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/logctx"
	"github.com/fhirgate/fhirgate/smart"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_http_requests_total",
			Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fhirgate_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fhirgate_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inflight)
	return m
}

func (s *Server) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, "/metrics")
		h.ServeHTTP(w, r)
	})
}

// routeInfo is filled in by handlers with the route template, which labels
// metrics and log lines without putting ids (or query strings, which may
// hold health data) into them.
type routeInfo struct{ route string }

type routeKey struct{}

func setRoute(r *http.Request, route string) {
	if ri, ok := r.Context().Value(routeKey{}).(*routeInfo); ok {
		ri.route = route
	}
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// deadlines) through this wrapper.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware wraps every request: request id, panic recovery, access log
// and metrics.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		ri := &routeInfo{route: "other"}
		ctx := context.WithValue(r.Context(), routeKey{}, ri)
		ctx = logctx.With(ctx, slog.String("request_id", id))
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.inflight.Inc()
		defer func() {
			s.metrics.inflight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if sw.status == 0 {
					s.internalError(sw, r)
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(r.Method, ri.route, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(r.Method, ri.route).Observe(elapsed.Seconds())
			level := slog.LevelDebug
			if status >= 500 {
				level = slog.LevelError
			} else if status >= 400 {
				level = slog.LevelInfo
			}
			s.log.Log(r.Context(), level, "request", "method", r.Method, "route", ri.route, "path", r.URL.Path,
				"status", status, "bytes", sw.bytes, "duration_ms", float64(elapsed.Microseconds())/1000)
		}()
		next.ServeHTTP(sw, r)
	})
}

// requestID keeps a caller's X-Request-Id when it is short and plain, so
// requests can be traced across services, and makes one up otherwise.
func requestID(given string) string {
	if len(given) > 0 && len(given) <= 64 && strings.Trim(given,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return given
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// internalError answers 500 in the format of the surface the request was for.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/auth/") {
		writeOAuthError(w, &smart.Error{Code: "server_error", Description: "internal error; see the server log", Status: http.StatusInternalServerError})
		return
	}
	writeOutcome(w, r, fhir.Internal(errors.New("panic")))
}
