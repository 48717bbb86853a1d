package authserver

import (
	"context"
	"errors"
	"log/slog"

	"github.com/fhirgate/fhirgate/smart"
)

// auditEvent collects what one token request reveals, for one audit line.
// It holds identifiers only: never the assertion, the token or a secret.
type auditEvent struct {
	clientID     string // claimed until authentication succeeds
	method       string
	assertionJTI string
	tokenJTI     string
	scope        string
	remoteAddr   string
}

// auditToken writes the audit line of a token request: "token issued" or
// "token refused" with the client id, decision, reason and jti values.
func (s *Server) auditToken(ctx context.Context, ev *auditEvent, err error) {
	attrs := []slog.Attr{
		slog.String("audit", "token"),
		slog.String("client_id", shorten(ev.clientID)),
		slog.String("auth_method", ev.method),
		slog.String("assertion_jti", shorten(ev.assertionJTI)),
		slog.String("remote_addr", ev.remoteAddr),
	}
	if err == nil {
		attrs = append(attrs, slog.String("decision", "issued"), slog.String("jti", ev.tokenJTI),
			slog.String("scope", ev.scope))
		s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "token issued", attrs...)
		return
	}
	attrs = append(attrs, slog.String("decision", "refused"))
	attrs = append(attrs, reasonAttrs(err)...)
	level := slog.LevelInfo
	if !isOAuthError(err) {
		level = slog.LevelError
	}
	s.cfg.Logger.LogAttrs(ctx, level, "token refused", attrs...)
}

// auditBasic logs a secret-based authentication outside the token
// endpoint; successes only at debug level, since they happen on every
// request of a Basic client.
func (s *Server) auditBasic(ctx context.Context, clientID, via string, err error) {
	attrs := []slog.Attr{slog.String("audit", "authn"), slog.String("client_id", shorten(clientID)),
		slog.String("auth_method", via)}
	if err == nil {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "client authenticated", append(attrs, slog.String("decision", "allowed"))...)
		return
	}
	attrs = append(append(attrs, slog.String("decision", "refused")), reasonAttrs(err)...)
	s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "client authentication refused", attrs...)
}

func reasonAttrs(err error) []slog.Attr {
	var oe *smart.Error
	if errors.As(err, &oe) {
		return []slog.Attr{slog.String("error", oe.Code), slog.String("reason", oe.Description)}
	}
	return []slog.Attr{slog.String("error", "internal"), slog.String("reason", err.Error())}
}

func isOAuthError(err error) bool {
	var oe *smart.Error
	return errors.As(err, &oe)
}
