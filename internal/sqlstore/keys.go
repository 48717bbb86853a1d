package sqlstore

import (
	"context"

	"github.com/fhirgate/fhirgate/internal/store"
)

// ListSigningKeys returns every signing key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, alg, private_key, created_at, sign_until, verify_until
		FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var c, su, vu int64
		if err := rows.Scan(&k.KID, &k.Alg, &k.Private, &c, &su, &vu); err != nil {
			return nil, err
		}
		k.CreatedAt, k.SignUntil, k.VerifyUntil = fromMicros(c), fromMicros(su), fromMicros(vu)
		out = append(out, k)
	}
	return out, rows.Err()
}

// PutSigningKey inserts a key; ErrExists when its kid is taken.
func (s *Store) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	return s.execAffecting(ctx, store.ErrExists, `INSERT INTO signing_keys (kid, alg, private_key, created_at, sign_until, verify_until)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING`,
		k.KID, k.Alg, k.Private, micros(k.CreatedAt), micros(k.SignUntil), micros(k.VerifyUntil))
}

// UpdateSigningKey changes the validity window of a stored key.
func (s *Store) UpdateSigningKey(ctx context.Context, k store.SigningKey) error {
	return s.execAffecting(ctx, store.ErrNotFound, "UPDATE signing_keys SET sign_until = ?, verify_until = ? WHERE kid = ?",
		micros(k.SignUntil), micros(k.VerifyUntil), k.KID)
}

// DeleteSigningKey removes a key.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	return s.execAffecting(ctx, store.ErrNotFound, "DELETE FROM signing_keys WHERE kid = ?", kid)
}

// execAffecting runs one write statement and returns none when it changed
// no row.
func (s *Store) execAffecting(ctx context.Context, none error, q string, args ...any) error {
	return s.exec(ctx, func(ctx context.Context, x execer) error {
		res, err := x.ExecContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return none
		}
		return nil
	})
}
