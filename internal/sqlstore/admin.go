package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fhirgate/fhirgate/internal/store"
)

// GetClient returns a registered client.
func (s *Store) GetClient(ctx context.Context, id string) (*store.ClientRecord, error) {
	c := &store.ClientRecord{ID: id}
	var ts, created int64
	err := s.r.QueryRowContext(ctx, s.d.rebind("SELECT body, secret_hash, updated_at, created_at FROM clients WHERE id = ?"), id).
		Scan(&c.Body, &c.SecretHash, &ts, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.UpdatedAt, c.CreatedAt = fromMicros(ts), fromMicros(created)
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]store.ClientRecord, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, body, secret_hash, updated_at, created_at FROM clients ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ClientRecord
	for rows.Next() {
		var c store.ClientRecord
		var ts, created int64
		if err := rows.Scan(&c.ID, &c.Body, &c.SecretHash, &ts, &created); err != nil {
			return nil, err
		}
		c.UpdatedAt, c.CreatedAt = fromMicros(ts), fromMicros(created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutClient creates or replaces a client; an empty SecretHash keeps the
// stored hash.
func (s *Store) PutClient(ctx context.Context, c store.ClientRecord) (bool, error) {
	return s.putDoc(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE clients SET body = ?, updated_at = ?,
			secret_hash = CASE WHEN ? = '' THEN secret_hash ELSE ? END WHERE id = ?`),
			c.Body, micros(s.now()), c.SecretHash, c.SecretHash, c.ID)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return false, nil
		}
		now := micros(s.now())
		_, err = tx.ExecContext(ctx, s.d.rebind("INSERT INTO clients (id, body, secret_hash, updated_at, created_at) VALUES (?, ?, ?, ?, ?)"),
			c.ID, c.Body, c.SecretHash, now, now)
		return true, err
	})
}

// DeleteClient removes a client; ErrNotFound when there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.deleteDoc(ctx, "DELETE FROM clients WHERE id = ?", id)
}

// GetPolicy returns an AccessPolicy.
func (s *Store) GetPolicy(ctx context.Context, id string) (*store.PolicyRecord, error) {
	p := &store.PolicyRecord{ID: id}
	var ts int64
	err := s.r.QueryRowContext(ctx, s.d.rebind("SELECT body, updated_at FROM access_policies WHERE id = ?"), id).Scan(&p.Body, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	p.UpdatedAt = fromMicros(ts)
	return p, nil
}

// ListPolicies returns every AccessPolicy ordered by id.
func (s *Store) ListPolicies(ctx context.Context) ([]store.PolicyRecord, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, body, updated_at FROM access_policies ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PolicyRecord
	for rows.Next() {
		var p store.PolicyRecord
		var ts int64
		if err := rows.Scan(&p.ID, &p.Body, &ts); err != nil {
			return nil, err
		}
		p.UpdatedAt = fromMicros(ts)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutPolicy creates or replaces an AccessPolicy.
func (s *Store) PutPolicy(ctx context.Context, p store.PolicyRecord) (bool, error) {
	return s.putDoc(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, s.d.rebind("UPDATE access_policies SET body = ?, updated_at = ? WHERE id = ?"),
			p.Body, micros(s.now()), p.ID)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return false, nil
		}
		_, err = tx.ExecContext(ctx, s.d.rebind("INSERT INTO access_policies (id, body, updated_at) VALUES (?, ?, ?)"),
			p.ID, p.Body, micros(s.now()))
		return true, err
	})
}

// DeletePolicy removes an AccessPolicy; ErrNotFound when there is none.
func (s *Store) DeletePolicy(ctx context.Context, id string) error {
	return s.deleteDoc(ctx, "DELETE FROM access_policies WHERE id = ?", id)
}

// putDoc runs an upsert of a client or policy and bumps the configuration
// revision in the same transaction, so no process can see the change
// without the new revision. Two processes inserting the same new id at once
// leave one of them with a unique violation; the retry then updates.
func (s *Store) putDoc(ctx context.Context, upsert func(*sql.Tx) (bool, error)) (bool, error) {
	var created bool
	err := s.adminTx(ctx, func(tx *sql.Tx) error {
		var err error
		created, err = upsert(tx)
		return err
	})
	if err != nil && isUniqueViolation(err) {
		err = s.adminTx(ctx, func(tx *sql.Tx) error {
			var err error
			created, err = upsert(tx)
			return err
		})
	}
	return created, err
}

func (s *Store) deleteDoc(ctx context.Context, q, id string) error {
	return s.adminTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(q), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

func (s *Store) adminTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.inWriteTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE config_revision SET rev = rev + 1 WHERE id = 1"); err != nil {
			return fmt.Errorf("bump config revision: %w", err)
		}
		return nil
	})
}

// ConfigRevision returns the number of client and policy changes so far.
func (s *Store) ConfigRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.r.QueryRowContext(ctx, "SELECT rev FROM config_revision WHERE id = 1").Scan(&rev)
	return rev, err
}
