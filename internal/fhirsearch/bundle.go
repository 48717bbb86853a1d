package fhirsearch

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// bundle assembles a searchset Bundle around stored resource bodies
// without decoding them (the style of fhirapi's bundle writer): entries
// are appended as raw JSON.
type bundle struct {
	buf     []byte
	entries int
}

type link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

func newBundle(now time.Time, total int, links []link) *bundle {
	b := &bundle{buf: make([]byte, 0, 8192)}
	b.buf = append(b.buf, `{"resourceType":"Bundle","id":"`...)
	b.buf = append(b.buf, newID()...)
	b.buf = append(b.buf, `","meta":{"lastUpdated":"`...)
	b.buf = append(b.buf, fhir.FormatInstant(now)...)
	b.buf = append(b.buf, `"},"type":"searchset"`...)
	if total >= 0 {
		b.buf = append(b.buf, `,"total":`...)
		b.buf = strconv.AppendInt(b.buf, int64(total), 10)
	}
	if len(links) > 0 {
		l, _ := json.Marshal(links)
		b.buf = append(b.buf, `,"link":`...)
		b.buf = append(b.buf, l...)
	}
	return b
}

// add appends an entry with its search.mode (match, include or outcome).
func (b *bundle) add(fullURL string, resource []byte, mode string) {
	if b.entries == 0 {
		b.buf = append(b.buf, `,"entry":[`...)
	} else {
		b.buf = append(b.buf, ',')
	}
	b.entries++
	b.buf = append(b.buf, '{')
	if fullURL != "" {
		b.buf = append(b.buf, `"fullUrl":`...)
		b.buf = strconv.AppendQuote(b.buf, fullURL)
		b.buf = append(b.buf, ',')
	}
	b.buf = append(b.buf, `"resource":`...)
	b.buf = append(b.buf, resource...)
	b.buf = append(b.buf, `,"search":{"mode":"`...)
	b.buf = append(b.buf, mode...)
	b.buf = append(b.buf, `"}}`...)
}

// bytes closes the Bundle; without entries it has no entry array (FHIR
// JSON has no empty arrays).
func (b *bundle) bytes() []byte {
	if b.entries > 0 {
		b.buf = append(b.buf, ']')
	}
	return append(b.buf, '}')
}

// newID returns a random UUID (version 4) for a Bundle id.
func newID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = 0x40 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}
