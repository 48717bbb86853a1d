package sqlstore

import (
	"context"
	"time"
)

// UseJTI records (clientID, jti) until until. One statement does it, so the
// database's unique key makes it atomic across goroutines and processes: an
// insert wins; a conflicting row is taken over only if it has expired.
func (s *Store) UseJTI(ctx context.Context, clientID, jti string, until time.Time) (bool, error) {
	now := micros(s.now())
	var fresh bool
	err := s.exec(ctx, func(ctx context.Context, q execer) error {
		res, err := q.ExecContext(ctx, s.d.rebind(`INSERT INTO jti_replay (client_id, jti, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at
		WHERE jti_replay.expires_at < ?`), clientID, jti, micros(until), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	return fresh, err
}

// PurgeJTIs deletes replay records that expired before now.
func (s *Store) PurgeJTIs(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.exec(ctx, func(ctx context.Context, q execer) error {
		res, err := q.ExecContext(ctx, s.d.rebind("DELETE FROM jti_replay WHERE expires_at < ?"), micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
