package httpapi

import (
	"net/http"
	"net/http/pprof"
)

// pprofRoutes serves the Go runtime profiles of net/http/pprof under
// /debug/pprof/ on the admin side: to root only, since profiles and the
// command line reveal the server's internals (and a CPU or trace profile
// costs CPU for as long as the caller asks). The index also serves the
// named profiles: /debug/pprof/heap, /goroutine, /allocs, /block, /mutex,
// /threadcreate.
func (s *Server) pprofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", s.rootOnly("/debug/pprof/", pprof.Index))
	mux.HandleFunc("GET /debug/pprof/cmdline", s.rootOnly("/debug/pprof/cmdline", pprof.Cmdline))
	mux.HandleFunc("GET /debug/pprof/profile", s.rootOnly("/debug/pprof/profile", pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", s.rootOnly("/debug/pprof/symbol", pprof.Symbol))
	mux.HandleFunc("POST /debug/pprof/symbol", s.rootOnly("/debug/pprof/symbol", pprof.Symbol))
	mux.HandleFunc("GET /debug/pprof/trace", s.rootOnly("/debug/pprof/trace", pprof.Trace))
}

// rootOnly serves h to root and answers everyone else as the admin API
// does: 401 without root's credentials, 403 for other clients.
func (s *Server) rootOnly(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setRoute(r, route)
		r2, err := s.requireRoot(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r2)
	}
}
