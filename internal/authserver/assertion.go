package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/smart"
)

// MaxAssertionBytes bounds a client assertion; a real one is under 2 KiB.
const MaxAssertionBytes = 16 << 10

// maxAssertionLifetime: exp "SHALL be no more than five minutes in the
// future" (client-confidential-asymmetric.html, claims table).
const maxAssertionLifetime = smart.AssertionMaxLifetimeSeconds * time.Second

// assertionState is what the checks learn about one client assertion.
type assertionState struct {
	req    *TokenRequest
	now    time.Time
	header assertionHeader
	claims assertionClaims
	client *Client
	key    jwks.Key
}

type assertionHeader struct {
	Alg  string          `json:"alg"`
	KID  string          `json:"kid"`
	Typ  string          `json:"typ"`
	JKU  string          `json:"jku"`
	Crit json.RawMessage `json:"crit"`
}

type assertionClaims struct {
	Iss, Sub, JTI string
	Aud           []string
	Exp, Nbf, Iat *int64
}

// assertionCheck is one rule of RFC 7523 §3 or SMART
// client-confidential-asymmetric; any failure is invalid_client.
type assertionCheck func(ctx context.Context, st *assertionState) error

// assertionChecks lists the rules in the order they run: cheap checks
// first, so that junk costs no store lookup, JWKS fetch or signature check;
// then the replay record, so that only a verified assertion can use up a
// jti; and the per-client rate limit last, so that only a verified, fresh
// assertion spends the client's budget. Charging the budget earlier would
// let anyone who knows a client id lock that client out with unsigned or
// replayed assertions naming it as iss; the per-address limit, applied
// before any of this, bounds the work such junk can cause.
func (s *Server) assertionChecks() []assertionCheck {
	return []assertionCheck{
		s.checkAssertionType,
		s.decodeAssertion,
		s.checkAlg,
		s.checkKID,
		s.checkTyp,
		s.checkCrit,
		s.checkIssSub,
		s.checkClientIDParam,
		s.checkAudience,
		s.checkExpiry,
		s.checkNotBefore,
		s.checkIssuedAt,
		s.checkJTI,
		s.lookupAssertionClient,
		s.checkClientMayAssert,
		s.checkJKU,
		s.resolveKey,
		s.verifySignature,
		s.checkReplay,
		s.checkClientRate,
	}
}

func assertionErr(format string, args ...any) error {
	return smart.InvalidClient("client assertion: "+format, args...)
}

// authenticateAssertion runs every check and returns the authenticated
// client (private_key_jwt, RFC 7523 §2.2).
func (s *Server) authenticateAssertion(ctx context.Context, req *TokenRequest, ev *auditEvent) (*Client, error) {
	st := &assertionState{req: req, now: s.cfg.Now()}
	for _, check := range s.assertionChecks() {
		err := check(ctx, st)
		ev.clientID, ev.assertionJTI = st.claims.Iss, st.claims.JTI
		if err != nil {
			return nil, err
		}
	}
	return st.client, nil
}

func (s *Server) checkAssertionType(_ context.Context, st *assertionState) error {
	if st.req.ClientAssertionType != smart.AssertionTypeJWTBearer {
		return smart.InvalidClient("client_assertion_type must be %q", smart.AssertionTypeJWTBearer)
	}
	if st.req.ClientAssertion == "" {
		return smart.InvalidClient("client_assertion is required")
	}
	return nil
}

func (s *Server) decodeAssertion(_ context.Context, st *assertionState) error {
	raw := st.req.ClientAssertion
	if len(raw) > MaxAssertionBytes {
		return assertionErr("larger than %d bytes", MaxAssertionBytes)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[2] == "" {
		return assertionErr("not a signed JWT in compact form (header.payload.signature)")
	}
	if err := decodeSegment(parts[0], &st.header); err != nil {
		return assertionErr("the header is not base64url-encoded JSON")
	}
	var claims map[string]json.RawMessage
	if err := decodeSegment(parts[1], &claims); err != nil {
		return assertionErr("the payload is not base64url-encoded JSON")
	}
	c, err := parseClaims(claims)
	if err != nil {
		return assertionErr("%v", err)
	}
	st.claims = c
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(b, v)
}

func parseClaims(m map[string]json.RawMessage) (assertionClaims, error) {
	var c assertionClaims
	for name, dst := range map[string]*string{"iss": &c.Iss, "sub": &c.Sub, "jti": &c.JTI} {
		if raw, ok := m[name]; ok && json.Unmarshal(raw, dst) != nil {
			return c, fmt.Errorf("claim %s must be a string", name)
		}
	}
	for name, dst := range map[string]**int64{"exp": &c.Exp, "nbf": &c.Nbf, "iat": &c.Iat} {
		if raw, ok := m[name]; ok {
			n, err := numericDate(raw)
			if err != nil {
				return c, fmt.Errorf("claim %s must be a NumericDate (seconds since the epoch)", name)
			}
			*dst = &n
		}
	}
	if raw, ok := m["aud"]; ok {
		aud, err := audience(raw)
		if err != nil {
			return c, errors.New("claim aud must be a string or an array of strings")
		}
		c.Aud = aud
	}
	return c, nil
}

// numericDate reads a JSON number of seconds (RFC 7519 §2), fractions
// truncated.
func numericDate(raw json.RawMessage) (int64, error) {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e12 {
		return 0, errors.New("not a NumericDate")
	}
	return int64(f), nil
}

func audience(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	err := json.Unmarshal(raw, &many)
	return many, err
}

func (s *Server) checkAlg(_ context.Context, st *assertionState) error {
	if !jwks.AlgAllowed(st.header.Alg) {
		return assertionErr("alg %q is not accepted; sign with one of %s", shorten(st.header.Alg), strings.Join(jwks.Algorithms, ", "))
	}
	return nil
}

func (s *Server) checkKID(_ context.Context, st *assertionState) error {
	if st.header.KID == "" {
		return assertionErr("the header needs kid, naming the key in the client's JWK Set")
	}
	return nil
}

func (s *Server) checkTyp(_ context.Context, st *assertionState) error {
	// SMART requires typ "JWT"; media type names compare case-insensitively
	// (RFC 7515 §4.1.9).
	if !strings.EqualFold(st.header.Typ, "JWT") {
		return assertionErr("the header needs typ \"JWT\"")
	}
	return nil
}

func (s *Server) checkCrit(_ context.Context, st *assertionState) error {
	if len(st.header.Crit) > 0 && string(st.header.Crit) != "null" {
		return assertionErr("the header lists crit extensions, which fhirgate does not understand (RFC 7515 §4.1.11)")
	}
	return nil
}

func (s *Server) checkIssSub(_ context.Context, st *assertionState) error {
	c := st.claims
	if c.Iss == "" || c.Sub == "" || c.Iss != c.Sub {
		return assertionErr("iss and sub are required and must both be the client_id (RFC 7523 §3)")
	}
	return nil
}

func (s *Server) checkClientIDParam(_ context.Context, st *assertionState) error {
	if id := st.req.ClientID; id != "" && id != st.claims.Iss {
		return assertionErr("the client_id parameter differs from the assertion's iss (RFC 7523 §3)")
	}
	return nil
}

func (s *Server) checkAudience(_ context.Context, st *assertionState) error {
	for _, a := range st.claims.Aud {
		if a == s.tokenURL {
			return nil
		}
	}
	return assertionErr("aud must be the token endpoint URL %s", s.tokenURL)
}

func (s *Server) checkExpiry(_ context.Context, st *assertionState) error {
	if st.claims.Exp == nil {
		return assertionErr("exp is required")
	}
	exp := time.Unix(*st.claims.Exp, 0)
	if !st.now.Before(exp.Add(s.cfg.Leeway)) {
		return assertionErr("expired at %s (server time %s)", exp.UTC().Format(time.RFC3339), st.now.UTC().Format(time.RFC3339))
	}
	if exp.After(st.now.Add(maxAssertionLifetime + s.cfg.Leeway)) {
		return assertionErr("exp must be no more than five minutes in the future (server time %s)", st.now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Server) checkNotBefore(_ context.Context, st *assertionState) error {
	if st.claims.Nbf == nil {
		return nil
	}
	if nbf := time.Unix(*st.claims.Nbf, 0); st.now.Add(s.cfg.Leeway).Before(nbf) {
		return assertionErr("not valid before %s (server time %s)", nbf.UTC().Format(time.RFC3339), st.now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Server) checkIssuedAt(_ context.Context, st *assertionState) error {
	if st.claims.Iat == nil {
		return nil
	}
	if iat := time.Unix(*st.claims.Iat, 0); st.now.Add(s.cfg.Leeway).Before(iat) {
		return assertionErr("iat is in the future (server time %s)", st.now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Server) checkJTI(_ context.Context, st *assertionState) error {
	switch {
	case st.claims.JTI == "":
		return assertionErr("jti is required")
	case len(st.claims.JTI) > 256:
		return assertionErr("jti is longer than 256 characters")
	}
	return nil
}

func (s *Server) lookupAssertionClient(ctx context.Context, st *assertionState) error {
	c, err := s.clients.get(ctx, st.claims.Iss)
	if err != nil {
		return err
	}
	if err := checkActive(c, st.claims.Iss); err != nil {
		return err
	}
	st.client = c
	return nil
}

func checkActive(c *Client, id string) error {
	if c == nil {
		return smart.InvalidClient("client %q is not registered", shorten(id))
	}
	if !c.Active {
		return smart.InvalidClient("client %q is not active", shorten(id))
	}
	return nil
}

func (s *Server) checkClientMayAssert(_ context.Context, st *assertionState) error {
	if !st.client.AcceptsAssertionType(smart.AssertionTypeJWTBearer) {
		return smart.InvalidClient("client %q is not registered for private_key_jwt: it has no jwks_uri or jwks, or its client_assertion_types do not include the JWT bearer type", st.client.ID)
	}
	return nil
}

func (s *Server) checkClientRate(_ context.Context, st *assertionState) error {
	return s.cfg.Limits.checkClient(st.client.ID, st.now)
}

func (s *Server) checkJKU(_ context.Context, st *assertionState) error {
	// A jku header is accepted only when it is the registered jwks_uri
	// (SMART-ASYM "Signature Verification" step 1), so it can never point
	// fhirgate at a URL of the sender's choosing.
	if jku := st.header.JKU; jku != "" && jku != st.client.JWKSURI {
		return assertionErr("jku does not match the client's registered jwks_uri")
	}
	return nil
}

func (s *Server) resolveKey(ctx context.Context, st *assertionState) error {
	var k jwks.Key
	var err error
	if st.client.JWKS != nil {
		k, err = st.client.JWKS.Select(st.header.KID, st.header.Alg)
	} else {
		k, err = s.cfg.JWKS.Lookup(ctx, st.client.ID, st.client.JWKSURI, st.header.KID, st.header.Alg)
	}
	switch {
	case errors.Is(err, jwks.ErrAmbiguousKey):
		return assertionErr("more than one key in the client's JWK Set has kid %q and fits %s; kids must be unique", shorten(st.header.KID), st.header.Alg)
	case errors.Is(err, jwks.ErrNoKey):
		return assertionErr("no key in the client's JWK Set has kid %q and a type fitting %s", shorten(st.header.KID), st.header.Alg)
	case errors.Is(err, jwks.ErrFetch):
		return assertionErr("the client's JWK Set could not be obtained from its jwks_uri: %s", describeFetchError(err))
	case err != nil:
		return err
	}
	st.key = k
	return nil
}

// describeFetchError says why a jwks_uri fetch failed without echoing
// network details (resolved addresses of internal names) to the caller;
// the jwks cache logs the full error.
func describeFetchError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, jwks.ErrBlockedAddress):
		return "it resolves to a non-public address, which fhirgate does not contact"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "the request timed out"
	case errors.As(err, new(*url.Error)):
		return "the URL could not be reached"
	}
	return strings.TrimPrefix(err.Error(), jwks.ErrFetch.Error()+": ")
}

func (s *Server) verifySignature(_ context.Context, st *assertionState) error {
	alg, ok := jwa.LookupSignatureAlgorithm(st.header.Alg)
	if !ok {
		return assertionErr("alg %q is unknown", st.header.Alg)
	}
	// The algorithm is pinned: the allow-listed header alg, checked to fit
	// the selected key; jwx refuses a header whose alg differs.
	if _, err := jws.VerifyCompactFast(st.key.Public, []byte(st.req.ClientAssertion), alg); err != nil {
		return assertionErr("the signature does not verify with key %q", shorten(st.key.KID))
	}
	return nil
}

func (s *Server) checkReplay(ctx context.Context, st *assertionState) error {
	until := time.Unix(*st.claims.Exp, 0).Add(s.cfg.Leeway)
	fresh, err := s.cfg.Replay.UseJTI(ctx, st.client.ID, st.claims.JTI, until)
	if err != nil {
		return fmt.Errorf("authserver: replay store: %w", err)
	}
	if !fresh {
		return assertionErr("jti %q was already used; every assertion needs a new jti", shorten(st.claims.JTI))
	}
	return nil
}
