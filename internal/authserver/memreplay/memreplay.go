// Package memreplay is an in-memory authserver.ReplayStore for tests and
// single-process use. It does not survive a restart and is not shared
// between replicas; production uses the SQL store.
package memreplay

import (
	"context"
	"sync"
	"time"
)

type key struct{ client, jti string }

// Store is an in-memory replay store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	seen    map[key]time.Time
	inserts int
}

// New returns an empty store using the clock now (time.Now when nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, seen: make(map[key]time.Time)}
}

// UseJTI records (clientID, jti) until until; fresh is false when the pair
// is already recorded and not yet past its until.
func (s *Store) UseJTI(_ context.Context, clientID, jti string, until time.Time) (bool, error) {
	now := s.now()
	k := key{clientID, jti}
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	s.seen[k] = until
	if s.inserts++; s.inserts%1024 == 0 {
		s.purge(now)
	}
	return true, nil
}

func (s *Store) purge(now time.Time) {
	for k, exp := range s.seen {
		if !now.Before(exp) {
			delete(s.seen, k)
		}
	}
}

// Len returns the number of records kept (tests).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}
