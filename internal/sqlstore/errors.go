package sqlstore

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// retryable reports whether err is a PostgreSQL serialization failure or
// deadlock, which a transaction cures by running again.
func (s *Store) retryable(err error) bool {
	if err == nil || !s.d.pg {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// isUniqueViolation reports a unique-key violation on either backend.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
