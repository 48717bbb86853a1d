// Package smarttest runs an in-memory SMART Backend Services authorization
// server and FHIR Bulk Data export server on a loopback httptest.Server,
// for tests of SMART clients such as the fhirgate SDK and CLI.
//
// It is small but strict: it verifies each client assertion's signature
// against the client's registered JWK Set (inline or jwks_uri, with jku
// checked against it), checks iss, sub, aud, exp (at most five minutes
// ahead), typ, kid and jti replay as SMART client-confidential-asymmetric
// requires, grants only registered scopes, issues short-lived bearer tokens
// and refuses expired or revoked ones with 401. Its Bulk Data side runs the
// kick-off, status and file flow of Bulk Data 2.0 and records every request
// so that tests can assert on them. Behavior injects faults: slow or failing
// token requests, 429s, Retry-After, dropped connections, gzip, wrong counts.
//
// Its JOSE verification is written independently of the SDK's signing code
// so that the two check each other.
package smarttest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/smart"
)

// Options configures a Server.
type Options struct {
	// TokenLifetime is the lifetime of access tokens; zero means 5 minutes.
	// It is rounded down to whole seconds (expires_in is in seconds).
	TokenLifetime time.Duration
	// Now is the server's clock for assertions and tokens; nil means
	// time.Now. Share it with the client under test to move time.
	Now func() time.Time
}

// Client is a registered backend client.
type Client struct {
	ID string
	// JWKS is the inline public JWK Set (JSON), or nil.
	JWKS []byte
	// JWKSURI is the URL of the client's JWK Set, or "". A jku header must
	// equal it.
	JWKSURI string
	// Scopes are the scopes the client is pre-authorized for; a token
	// request gets the requested ones among them.
	Scopes []string
}

// Behavior injects faults and shapes the export flow. Change it with Set.
type Behavior struct {
	// TokenDelay delays every token response.
	TokenDelay time.Duration
	// TokenFailures makes the next so many token requests fail with
	// TokenFailureStatus (default 503) and a Retry-After of
	// TokenRetryAfter seconds when positive.
	TokenFailures      int
	TokenFailureStatus int
	TokenRetryAfter    int
	// KickoffThrottles makes the next so many kick-offs answer 429 with a
	// Retry-After of KickoffRetryAfter seconds.
	KickoffThrottles  int
	KickoffRetryAfter int
	// PollsBeforeDone is how many status polls answer 202 before the
	// manifest is served.
	PollsBeforeDone int
	// RetryAfter is the Retry-After header of 202 and 429 status answers;
	// "" sends none.
	RetryAfter string
	// PollThrottles makes the next so many status polls answer 429.
	PollThrottles int
	// PublicFiles serves files at capability URLs with
	// requiresAccessToken false; otherwise files need the token.
	PublicFiles bool
	// MaxLinesPerFile splits a type's resources over several files; zero
	// means one file per type.
	MaxLinesPerFile int
	// DropAfter breaks the first full (non-Range) download of each file
	// after so many bytes by closing the connection.
	DropAfter int
	// StallAfter makes the first full download of each file send so many
	// bytes and then nothing more until the client gives up.
	StallAfter int
	// IgnoreRange makes file downloads ignore Range headers.
	IgnoreRange bool
	// Gzip sends files with Content-Encoding: gzip to clients that accept it.
	Gzip bool
	// CountSkew is added to every count in the manifest.
	CountSkew int64
	// RevokeOnManifest revokes every issued token when the manifest is
	// served, as if they had expired while the export ran.
	RevokeOnManifest bool
}

// Server is the running test server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the root URL, e.g. http://127.0.0.1:PORT.
	URL      string
	srv      *httptest.Server
	now      func() time.Time
	lifetime time.Duration

	mu       sync.Mutex
	b        Behavior
	clients  map[string]Client
	tokens   map[string]*token
	jtis     map[string]time.Time
	jobs     map[string]*job
	groups   map[string]bool
	types    []string
	data     map[string][]string
	stats    stats
	received [][]byte
}

type stats struct {
	tokenRequests int
	kickoffs      []Kickoff
	polls         []time.Time
	deletes       []string
	files         []FileRequest
}

// Kickoff records one accepted or refused export kick-off.
type Kickoff struct {
	Method string
	// Path is the request path, e.g. /fhir/Group/g1/$export.
	Path   string
	Prefer string
	Accept string
	// Params holds every parameter with comma lists split, from the query
	// (GET) or the Parameters body (POST). Reference values are their
	// reference strings.
	Params map[string][]string
}

// FileRequest records one file download request.
type FileRequest struct {
	Path           string
	Range          string
	AcceptEncoding string
	// Authorization is whether an Authorization header was sent.
	Authorization bool
}

// token is an issued access token.
type token struct {
	clientID string
	scopes   []string
	expiry   time.Time
	revoked  bool
}

// New starts a Server; it is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	s := &Server{
		now:      opts.Now,
		lifetime: opts.TokenLifetime.Truncate(time.Second),
		clients:  map[string]Client{},
		tokens:   map[string]*token{},
		jtis:     map[string]time.Time{},
		jobs:     map[string]*job{},
		groups:   map[string]bool{},
		data:     map[string][]string{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = 5 * time.Minute
	}
	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// FHIRBaseURL is the FHIR base URL, URL + "/fhir".
func (s *Server) FHIRBaseURL() string { return s.URL + "/fhir" }

// TokenURL is the token endpoint, the aud of client assertions.
func (s *Server) TokenURL() string { return s.URL + "/auth/token" }

// HTTPClient returns an http.Client for the server.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// RegisterClient registers (or replaces) a backend client. It refuses a JWK
// Set with a private key in it.
func (s *Server) RegisterClient(c Client) error {
	if c.JWKS != nil {
		if _, err := parseJWKS(c.JWKS); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
	return nil
}

// Set changes the Behavior.
func (s *Server) Set(f func(b *Behavior)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.b)
}

// AddGroup makes a Group id known for group exports.
func (s *Server) AddGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = true
}

// AddResources adds NDJSON lines of one resource type to the export data.
func (s *Server) AddResources(typ string, lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.data[typ]; !ok {
		s.types = append(s.types, typ)
	}
	s.data[typ] = append(s.data[typ], lines...)
}

// GenerateResources adds n resources of typ, each about size bytes.
func (s *Server) GenerateResources(typ string, n, size int) {
	lines := make([]string, n)
	for i := range lines {
		line := fmt.Sprintf(`{"resourceType":%q,"id":"%s-%d","text":{"status":"generated","div":"`, typ, typ, i)
		pad := max(size-len(line)-8, 0)
		lines[i] = line + strings.Repeat("x", pad) + `"}}`
	}
	s.AddResources(typ, lines...)
}

// RevokeTokens makes every token issued so far invalid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// TokenRequests is the number of token requests received.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.tokenRequests
}

// Kickoffs returns the kick-offs received.
func (s *Server) Kickoffs() []Kickoff {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Kickoff(nil), s.stats.kickoffs...)
}

// Polls returns when each status GET arrived.
func (s *Server) Polls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.stats.polls...)
}

// Deletes returns the ids of the jobs that received a DELETE.
func (s *Server) Deletes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.stats.deletes...)
}

// FileRequests returns the file download requests received.
func (s *Server) FileRequests() []FileRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]FileRequest(nil), s.stats.files...)
}

// Received returns the bodies POSTed to /fhir/{type}.
func (s *Server) Received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.received...)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/smart-configuration", s.smartConfiguration)
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", s.smartConfiguration)
	mux.HandleFunc("/auth/token", s.tokenEndpoint)
	for _, m := range []string{"GET ", "POST "} {
		mux.HandleFunc(m+"/fhir/$export", s.kickoff)
		mux.HandleFunc(m+"/fhir/Patient/$export", s.kickoff)
		mux.HandleFunc(m+"/fhir/Group/{id}/$export", s.kickoff)
	}
	mux.HandleFunc("GET /bulkstatus/{id}", s.status)
	mux.HandleFunc("DELETE /bulkstatus/{id}", s.deleteJob)
	mux.HandleFunc("GET /bulkfiles/{id}/{n}", s.file)
	mux.HandleFunc("GET /fhir/{type}", s.search)
	mux.HandleFunc("POST /fhir/{type}", s.create)
	return mux
}

func (s *Server) smartConfiguration(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, smart.Configuration{
		TokenEndpoint:                              s.TokenURL(),
		GrantTypesSupported:                        []string{smart.GrantClientCredentials},
		TokenEndpointAuthMethodsSupported:          []string{smart.AuthPrivateKeyJWT},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"RS384", "ES384", "RS256", "ES256"},
		ScopesSupported:                            []string{"system/*.rs", "system/*.read"},
		Capabilities:                               []string{"client-confidential-asymmetric", "permission-v2"},
		CodeChallengeMethodsSupported:              []string{"S256"},
	})
}

// authorize checks the bearer token of r; on failure it has answered 401.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*token, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	t := s.tokens[raw]
	s.mu.Unlock()
	if !ok || t == nil || t.revoked || !s.now().Before(t.expiry) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOutcome(w, fhir.Unauthorized("missing, expired or revoked access token"))
		return nil, false
	}
	return t, true
}

// search answers GET /fhir/{type} with a searchset Bundle of that type.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	s.mu.Lock()
	lines := s.data[r.PathValue("type")]
	s.mu.Unlock()
	entries := make([]json.RawMessage, 0, len(lines))
	for _, l := range lines {
		entries = append(entries, json.RawMessage(`{"resource":`+l+`}`))
	}
	w.Header().Set("Content-Type", fhir.MediaJSON)
	json.NewEncoder(w).Encode(map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(lines), "entry": entries})
}

// create records a POSTed body and echoes it with 201.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	var body json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeOutcome(w, fhir.Invalid("body is not JSON: %v", err))
		return
	}
	s.mu.Lock()
	s.received = append(s.received, body)
	s.mu.Unlock()
	w.Header().Set("Content-Type", fhir.MediaJSON)
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", fhir.MediaPlainJSON)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeOutcome(w http.ResponseWriter, e *fhir.Error) {
	w.Header().Set("Content-Type", fhir.MediaJSON)
	w.WriteHeader(e.Status)
	w.Write(e.Outcome().JSON())
}

func randomID() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
