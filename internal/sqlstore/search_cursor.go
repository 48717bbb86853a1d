package sqlstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// cursor is a keyset position: the sort key values and rid of the row a
// page continues from, and the direction (backward for a previous page).
// keys holds, per sort key, the missing flag (int64 0 or 1) and the value.
type cursor struct {
	backward bool
	keys     []any
	rid      int64
}

// wireCursor is the cursor as sent to clients, base64url JSON. Sig names
// the sort it belongs to, so a cursor of another search is refused rather
// than misread.
type wireCursor struct {
	Dir  string            `json:"d"`
	Sig  string            `json:"s,omitempty"`
	Keys []json.RawMessage `json:"k,omitempty"`
	RID  int64             `json:"r"`
}

func sortSig(keys []sortKey) string {
	var parts []string
	for _, k := range keys {
		p := k.param.Code
		if k.desc {
			p = "-" + p
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

func encodeCursor(keys []sortKey, r pageRow, backward bool) string {
	w := wireCursor{Dir: "n", Sig: sortSig(keys), RID: r.rid}
	if backward {
		w.Dir = "p"
	}
	for _, v := range r.keys {
		b, _ := json.Marshal(v)
		w.Keys = append(w.Keys, b)
	}
	b, _ := json.Marshal(w)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor of a search sorted by keys; nil for none.
func decodeCursor(raw string, keys []sortKey) (*cursor, error) {
	if raw == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, errBadCursor(raw)
	}
	var w wireCursor
	if err := json.Unmarshal(b, &w); err != nil || (w.Dir != "n" && w.Dir != "p") ||
		w.Sig != sortSig(keys) || len(w.Keys) != 2*len(keys) {
		return nil, errBadCursor(raw)
	}
	c := &cursor{backward: w.Dir == "p", rid: w.RID}
	for i, k := range keys {
		m, err := strconv.ParseInt(string(w.Keys[2*i]), 10, 64)
		if err != nil || (m != 0 && m != 1) {
			return nil, errBadCursor(raw)
		}
		v, err := decodeKey(w.Keys[2*i+1], k.kind())
		if err != nil {
			return nil, errBadCursor(raw)
		}
		c.keys = append(c.keys, m, v)
	}
	return c, nil
}

func decodeKey(raw json.RawMessage, kind string) (any, error) {
	switch kind {
	case "i":
		return strconv.ParseInt(string(raw), 10, 64)
	case "f":
		return strconv.ParseFloat(string(raw), 64)
	}
	var s string
	d := json.NewDecoder(bytes.NewReader(raw))
	err := d.Decode(&s)
	return s, err
}
