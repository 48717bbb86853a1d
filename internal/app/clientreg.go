package app

import (
	"context"
	"errors"
	"strconv"

	"github.com/fhirgate/fhirgate/internal/store"
)

// LookupRegisteredClient makes clientStore an authserver.RegisteredClientStore:
// the registration is the client row's creation time in microseconds,
// which a replacement keeps and a deletion followed by a new registration
// of the same id changes, so the tokens of the earlier registration stop
// working (issue 3: deleting a client stops its tokens at once).
func (c clientStore) LookupRegisteredClient(ctx context.Context, id string) ([]byte, string, string, bool, error) {
	rec, err := c.s.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", "", false, nil
	}
	if err != nil {
		return nil, "", "", false, err
	}
	return rec.Body, rec.SecretHash, strconv.FormatInt(rec.CreatedAt.UnixMicro(), 10), true, nil
}
