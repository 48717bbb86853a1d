package resource

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseRender checks that whatever Parse accepts renders to valid JSON
// that parses again to the same type and id.
func FuzzParseRender(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","id":"a","name":[{"family":"\u00e9\"x"}]}`,
		`{"resourceType":"Observation","meta":{"tag":[{"code":"t"}],"versionId":"2"},"valueQuantity":{"value":1e3}}`,
		`{"resourceType":"P","a\\"b":{"c":["}",{"d":"]"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body)
		if err != nil {
			return
		}
		out := r.Render(7, time.Unix(1700000000, 0))
		if !json.Valid(out) {
			t.Fatalf("render of %q is not valid JSON: %s", body, out)
		}
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("rendered output does not parse: %v", err)
		}
		if r2.Type != r.Type || r2.ID != r.ID {
			t.Fatalf("round trip changed type/id")
		}
	})
}
