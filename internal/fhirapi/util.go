package fhirapi

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func atoi(s string) (int, error) { return strconv.Atoi(s) }

// newID returns a server-assigned id: a UUIDv7 (RFC 9562), whose time
// prefix keeps new rows together in the (type, id) index instead of
// scattering them the way random ids do.
func newID(now time.Time) string {
	var b [16]byte
	rand.Read(b[:])
	ms := uint64(now.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// ETag renders a version id as a weak ETag (R4 http.html#versioning).
func ETag(vid int64) string { return `W/"` + itoa(vid) + `"` }

// ParseETag reads a version id from an If-Match value: W/"3" or "3" (and,
// leniently, a bare 3). An empty value means no precondition (0).
func ParseETag(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, nil
	}
	v := strings.TrimPrefix(h, "W/")
	v = strings.Trim(v, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fhir.Invalid("If-Match %q: want a version ETag such as W/\"3\"", h)
	}
	return n, nil
}
