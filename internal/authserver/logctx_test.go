package authserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/jwks/jwkstest"
	"github.com/fhirgate/fhirgate/internal/logctx"
	"github.com/fhirgate/fhirgate/internal/tokens"
	"github.com/fhirgate/fhirgate/smart"
)

// TestBearerErrorLogCarriesRequestID checks that the error logged while
// authenticating a bearer token is logged with the request's context, so
// that it carries the request id; it names the jti, never the token.
func TestBearerErrorLogCarriesRequestID(t *testing.T) {
	logs := &syncBuffer{}
	f := newFixture(t, func(c *Config) {
		c.Logger = slog.New(logctx.NewHandler(slog.NewJSONHandler(logs, nil)))
	})
	f.register("c1", backendClient(inlineJWKS(t, jwkstest.New(t, "ES384", "k"))))
	// fhirgate only signs scopes it parsed; sign one it cannot parse to
	// reach the error path.
	c1, _ := f.srv.Client(context.Background(), "c1")
	tok, claims, err := f.srv.Tokens().Issue(tokens.Client{ID: "c1", Registration: c1.Registration}, "not a scope", 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := logctx.With(context.Background(), slog.String("request_id", "req-42"))
	_, err = f.srv.AuthenticateBearer(ctx, tok)
	oauthError(t, err, smart.ErrInvalidToken, http.StatusUnauthorized)
	var line map[string]any
	if err := json.Unmarshal([]byte(logs.String()), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line["msg"] != "access token with an unparsable scope" || line["request_id"] != "req-42" || line["jti"] != claims.ID {
		t.Fatalf("log line = %v, want the scope error with request_id req-42 and jti %s", line, claims.ID)
	}
	if strings.Contains(logs.String(), tok) {
		t.Fatal("the token is in the log")
	}
}
