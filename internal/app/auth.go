package app

import (
	"context"
	"errors"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/access"
	"github.com/fhirgate/fhirgate/internal/authserver"
	"github.com/fhirgate/fhirgate/internal/jwks"
	"github.com/fhirgate/fhirgate/internal/policy"
	"github.com/fhirgate/fhirgate/internal/store"
	"github.com/fhirgate/fhirgate/internal/tokens"
)

// authParts are the authorization server and the access decider.
type authParts struct {
	server   *authserver.Server
	keyring  *tokens.Keyring
	policies *policy.Engine
	decider  *access.Decider
}

// buildAuth opens the signing keyring (generating a key on first start),
// loads the access policies and builds the authorization server.
func (a *App) buildAuth(ctx context.Context) error {
	leeway := a.cfg.ClockLeeway
	if leeway == NoClockLeeway {
		leeway = authserver.NoLeeway // a zero Leeway is authserver's default
	}
	// A retired signing key must keep verifying the tokens it signed
	// (tokens.KeyringConfig.VerifyGrace): at least the longest lifetime
	// plus the leeway.
	grace := max(time.Hour, a.cfg.MaxTokenLifetime+max(leeway, 0)+time.Minute)
	kr, err := tokens.OpenKeyring(ctx, tokens.KeyringConfig{Store: keyStore{a.store}, VerifyGrace: grace, Logger: a.log})
	if err != nil {
		return err
	}
	cache := jwks.NewCache(jwks.Config{AllowPrivate: a.cfg.AllowPrivateJWKS, AllowHTTP: a.cfg.AllowPrivateJWKS, Logger: a.log})
	srv, err := authserver.New(authserver.Config{
		BaseURL: a.baseURL,
		Clients: clientStore{a.store},
		Replay:  a.store,
		Keyring: kr,
		JWKS:    cache,
		Limits:  authserver.NewTokenLimiter(tokenLimits(a.cfg)),
		// Leeway and the lifetime cap come from --clock-leeway and
		// --max-token-lifetime (checklist G3; SMART Backend Services
		// expires_in).
		Leeway:           leeway,
		MaxTokenLifetime: a.cfg.MaxTokenLifetime,
		Logger:           a.log,
	})
	if err != nil {
		return err
	}
	engine := policy.NewEngine(nil, policy.WithLogger(a.log))
	a.auth = &authParts{server: srv, keyring: kr, policies: engine, decider: access.New(engine, a.log)}
	return a.reloadPolicies(ctx)
}

// tokenLimits turns the configured rates into limiter settings with a
// burst of five seconds' worth.
func tokenLimits(c Config) authserver.TokenLimiterConfig {
	var l authserver.TokenLimiterConfig
	if c.TokenRatePerClient > 0 {
		l.PerClient, l.ClientBurst = c.TokenRatePerClient, int(5*c.TokenRatePerClient)+1
	}
	if c.TokenRatePerAddress > 0 {
		l.PerAddress, l.AddressBurst = c.TokenRatePerAddress, int(5*c.TokenRatePerAddress)+1
	}
	return l
}

// reloadPolicies parses every stored AccessPolicy and swaps the engine's
// set. A stored policy that no longer parses is skipped and logged: it
// grants nothing, which is the safe side of default deny.
func (a *App) reloadPolicies(ctx context.Context) error {
	recs, err := a.store.ListPolicies(ctx)
	if err != nil {
		return err
	}
	ps := make([]*policy.Policy, 0, len(recs))
	for _, r := range recs {
		p, err := policy.ParseFor(r.ID, r.Body)
		if err != nil {
			a.log.ErrorContext(ctx, "stored AccessPolicy is invalid and grants nothing", "policy", r.ID, "err", err)
			continue
		}
		ps = append(ps, p)
	}
	a.auth.policies.Replace(ps)
	return nil
}

// watchConfig polls the store's configuration revision so that changes to
// clients and policies made through another server process reach this one
// within a second: cached clients are dropped (a deactivated client's
// tokens stop working) and policies reloaded.
func (a *App) watchConfig(ctx context.Context) {
	last, _ := a.store.ConfigRevision(ctx)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := a.store.ConfigRevision(ctx)
		if err != nil || rev == last {
			continue
		}
		last = rev
		a.auth.server.ClientsChanged()
		if err := a.reloadPolicies(ctx); err != nil {
			a.log.ErrorContext(ctx, "reload access policies", "err", err)
		}
	}
}

// maintain runs the periodic upkeep of the authorization server: signing
// key rotation and retirement, and the purge of expired jti records.
func (a *App) maintain(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := a.auth.keyring.Maintain(ctx); err != nil && ctx.Err() == nil {
			a.log.ErrorContext(ctx, "signing key maintenance", "err", err)
		}
		if _, err := a.store.PurgeJTIs(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.log.ErrorContext(ctx, "purge expired assertion ids", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminCodec validates admin resources with the authorization server's
// rules (Client) and the policy engine's (AccessPolicy).
type adminCodec struct{}

func (adminCodec) PrepareClient(id string, body []byte) ([]byte, string, error) {
	if id == "root" {
		e := fhir.Unprocessable("the client id root is reserved for the built-in admin client")
		e.Expression = []string{"id"}
		return nil, "", e
	}
	c, err := authserver.ParseClientFor(id, body)
	if err != nil {
		return nil, "", err
	}
	return c.StorageForm()
}

func (adminCodec) PreparePolicy(id string, body []byte) ([]byte, error) {
	p, err := policy.ParseFor(id, body)
	if err != nil {
		return nil, err
	}
	return p.JSON()
}

// clientStore adapts the store to authserver.ClientStore.
type clientStore struct{ s store.ClientStore }

func (c clientStore) LookupClient(ctx context.Context, id string) ([]byte, string, bool, error) {
	rec, err := c.s.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	return rec.Body, rec.SecretHash, true, nil
}

// keyStore adapts the store to tokens.KeyStore (upsert, idempotent delete).
type keyStore struct{ s store.KeyStore }

func (k keyStore) ListSigningKeys(ctx context.Context) ([]tokens.SigningKey, error) {
	recs, err := k.s.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]tokens.SigningKey, len(recs))
	for i, r := range recs {
		out[i] = tokens.SigningKey{KID: r.KID, Alg: r.Alg, PrivateKeyPEM: r.Private, Created: r.CreatedAt,
			SignUntil: r.SignUntil, RetireAfter: r.VerifyUntil}
	}
	return out, nil
}

func (k keyStore) PutSigningKey(ctx context.Context, sk tokens.SigningKey) error {
	rec := store.SigningKey{KID: sk.KID, Alg: sk.Alg, Private: sk.PrivateKeyPEM, CreatedAt: sk.Created,
		SignUntil: sk.SignUntil, VerifyUntil: sk.RetireAfter}
	err := k.s.PutSigningKey(ctx, rec)
	if errors.Is(err, store.ErrExists) {
		return k.s.UpdateSigningKey(ctx, rec)
	}
	return err
}

func (k keyStore) DeleteSigningKey(ctx context.Context, kid string) error {
	if err := k.s.DeleteSigningKey(ctx, kid); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
