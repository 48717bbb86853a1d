package jwks

import (
	"encoding/json"
	"errors"
	"fmt"
)

// MaxKeys bounds the number of keys read from one JWK Set.
const MaxKeys = 100

// Set is a client's validated JWK Set.
type Set struct {
	Keys []Key
	// Skipped counts keys of a fetched set that were ignored because they
	// are not usable public signing keys (wrong use, unsupported type,
	// private material); a registered set never skips.
	Skipped int
}

// SetError locates a key validation failure inside a JWK Set.
type SetError struct {
	Index int // position in "keys"; -1 when the document itself is wrong
	Err   error
}

func (e *SetError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("JWK Set: %v", e.Err)
	}
	return fmt.Sprintf("JWK Set keys[%d]: %v", e.Index, e.Err)
}

// Unwrap returns the cause (a *KeyError for a bad key).
func (e *SetError) Unwrap() error { return e.Err }

// Member returns the JWK member at fault, or "" when the set itself is wrong.
func (e *SetError) Member() string {
	var ke *KeyError
	if errors.As(e.Err, &ke) {
		return ke.Member
	}
	return ""
}

func splitSet(data []byte) ([]json.RawMessage, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, &SetError{Index: -1, Err: errors.New("not a JSON object with a \"keys\" array")}
	}
	if doc.Keys == nil {
		return nil, &SetError{Index: -1, Err: errors.New("the \"keys\" array is missing")}
	}
	if len(*doc.Keys) > MaxKeys {
		return nil, &SetError{Index: -1, Err: fmt.Errorf("more than %d keys", MaxKeys)}
	}
	return *doc.Keys, nil
}

// ParseRegisteredSet validates a JWK Set supplied at registration ("jwks"
// of a Client): it must hold at least one key, every key must be a valid
// public signing key, and kids must be unique (SMART
// client-confidential-asymmetric: kid "SHALL be unique" within the set).
// The error is a *SetError.
func ParseRegisteredSet(data []byte) (*Set, error) {
	raws, err := splitSet(data)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, &SetError{Index: -1, Err: errors.New("the \"keys\" array is empty")}
	}
	set := &Set{Keys: make([]Key, 0, len(raws))}
	seen := map[string]bool{}
	for i, raw := range raws {
		k, err := ParseKey(raw)
		if err != nil {
			return nil, &SetError{Index: i, Err: err}
		}
		if seen[k.KID] {
			return nil, &SetError{Index: i, Err: invalid("kid", "kid %q is used by more than one key", k.KID)}
		}
		seen[k.KID] = true
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// ParseFetchedSet reads a JWK Set fetched from a client's jwks_uri. Keys
// that are not usable public signing keys are skipped rather than failing
// the set, since a published set may legitimately hold encryption keys
// (SMART-ASYM advice on key_ops/use, checklist A7.6). The document itself
// must be well formed.
func ParseFetchedSet(data []byte) (*Set, error) {
	raws, err := splitSet(data)
	if err != nil {
		return nil, err
	}
	set := &Set{Keys: make([]Key, 0, len(raws))}
	for _, raw := range raws {
		k, err := ParseKey(raw)
		if err != nil {
			set.Skipped++
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// Select returns the single key with this kid that fits alg (SMART
// client-confidential-asymmetric "Signature Verification" step 3). No
// match is ErrNoKey, more than one is ErrAmbiguousKey.
func (s *Set) Select(kid, alg string) (Key, error) {
	var found []Key
	for _, k := range s.Keys {
		if k.KID == kid && k.Fits(alg) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return Key{}, ErrNoKey
	case 1:
		return found[0], nil
	}
	return Key{}, ErrAmbiguousKey
}

// HasKID reports whether any key carries kid, whatever its type.
func (s *Set) HasKID(kid string) bool {
	for _, k := range s.Keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}
