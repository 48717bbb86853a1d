package fhirapi

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
)

// bundleWriter assembles a Bundle around stored resource bodies without
// decoding them: entries are appended as raw JSON.
type bundleWriter struct {
	buf     []byte
	entries int
	mark    int // length of buf before `,"entry":[`
}

// Link is a Bundle.link.
type Link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

func newBundleWriter(typ string, now time.Time, total int, links []Link) *bundleWriter {
	b := &bundleWriter{buf: make([]byte, 0, 4096)}
	b.buf = append(b.buf, `{"resourceType":"Bundle","id":"`...)
	b.buf = append(b.buf, newID(now)...)
	b.buf = append(b.buf, `","meta":{"lastUpdated":"`...)
	b.buf = append(b.buf, fhir.FormatInstant(now)...)
	b.buf = append(b.buf, `"},"type":"`...)
	b.buf = append(b.buf, typ...)
	b.buf = append(b.buf, '"')
	if total >= 0 {
		b.buf = append(b.buf, `,"total":`...)
		b.buf = strconv.AppendInt(b.buf, int64(total), 10)
	}
	if len(links) > 0 {
		l, _ := json.Marshal(links)
		b.buf = append(b.buf, `,"link":`...)
		b.buf = append(b.buf, l...)
	}
	b.mark = len(b.buf)
	b.buf = append(b.buf, `,"entry":[`...)
	return b
}

// entryRequest is Bundle.entry.request.
type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// entryResponse is Bundle.entry.response.
type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// entry is one Bundle.entry; Resource is raw JSON.
type entry struct {
	FullURL    string
	Resource   []byte
	SearchMode string
	Request    *entryRequest
	Response   *entryResponse
}

func (b *bundleWriter) add(e entry) {
	if b.entries > 0 {
		b.buf = append(b.buf, ',')
	}
	b.entries++
	b.buf = append(b.buf, '{')
	sep := false
	field := func(name string) {
		if sep {
			b.buf = append(b.buf, ',')
		}
		sep = true
		b.buf = append(b.buf, '"')
		b.buf = append(b.buf, name...)
		b.buf = append(b.buf, `":`...)
	}
	if e.FullURL != "" {
		field("fullUrl")
		b.buf = strconv.AppendQuote(b.buf, e.FullURL)
	}
	if e.Resource != nil {
		field("resource")
		b.buf = append(b.buf, e.Resource...)
	}
	if e.SearchMode != "" {
		field("search")
		b.buf = append(b.buf, `{"mode":"`...)
		b.buf = append(b.buf, e.SearchMode...)
		b.buf = append(b.buf, `"}`...)
	}
	if e.Request != nil {
		field("request")
		r, _ := json.Marshal(e.Request)
		b.buf = append(b.buf, r...)
	}
	if e.Response != nil {
		field("response")
		r, _ := json.Marshal(e.Response)
		b.buf = append(b.buf, r...)
	}
	b.buf = append(b.buf, '}')
}

// bytes closes the Bundle. A Bundle without entries leaves entry out: FHIR
// JSON has no empty arrays.
func (b *bundleWriter) bytes() []byte {
	if b.entries == 0 {
		return append(b.buf[:b.mark], '}')
	}
	return append(b.buf, ']', '}')
}
