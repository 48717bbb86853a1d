package resource

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRenderSetsServerMembersAndKeepsTheRest(t *testing.T) {
	in := `{ "status":"final", "resourceType":"Observation", "id":"old",
	  "meta":{"versionId":"9","lastUpdated":"2000-01-01T00:00:00Z","tag":[{"code":"x"}]},
	  "code":{"text":"HbA1c \u00e9"} }`
	r, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "Observation" || r.ID != "old" {
		t.Fatalf("type/id = %q/%q", r.Type, r.ID)
	}
	r.ID = "new-1"
	ts := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC)
	out := string(r.Render(3, ts))
	want := `{"resourceType":"Observation","id":"new-1","meta":{"versionId":"3","lastUpdated":"2026-11-23T08:00:00.123456Z","tag":[{"code":"x"}]},"status":"final","code":{"text":"HbA1c \u00e9"}}`
	if out != want {
		t.Fatalf("render:\n got %s\nwant %s", out, want)
	}
	if !json.Valid([]byte(out)) {
		t.Fatal("invalid JSON")
	}
}

func TestParseRefusals(t *testing.T) {
	for name, in := range map[string]string{
		"not json":         `{"resourceType":`,
		"array":            `[{"resourceType":"Patient"}]`,
		"no type":          `{"id":"x"}`,
		"type not string":  `{"resourceType":7}`,
		"empty type":       `{"resourceType":""}`,
		"id not string":    `{"resourceType":"Patient","id":7}`,
		"meta not object":  `{"resourceType":"Patient","meta":[]}`,
		"duplicate member": `{"resourceType":"Patient","active":true,"active":false}`,
		"null member":      `{"resourceType":"Patient","active":null}`,
		"trailing data":    `{"resourceType":"Patient"} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); err == nil {
				t.Fatalf("Parse(%s) succeeded", in)
			}
		})
	}
}

func TestGetSetAndMeta(t *testing.T) {
	r, err := Parse([]byte(`{"resourceType":"Patient","meta":{"profile":["p"]},"name":[{"family":"A"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Get("name")) != `[{"family":"A"}]` || r.Get("missing") != nil {
		t.Fatal("Get")
	}
	if string(r.MetaMember("profile")) != `["p"]` {
		t.Fatal("MetaMember")
	}
	r.Set("active", json.RawMessage(`true`))
	r.Set("name", json.RawMessage(`[]`))
	out := string(r.Render(1, time.Unix(0, 0)))
	if !strings.HasSuffix(out, `,"name":[],"active":true}`) || strings.Contains(out, `"id"`) {
		t.Fatalf("render %s", out)
	}
}

func BenchmarkParseRender(b *testing.B) {
	body := []byte(`{"resourceType":"Observation","id":"a","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c/Hemoglobin.total in Blood"}],"text":"Hemoglobin A1c"},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2014-05-11T12:39:55+04:00","valueQuantity":{"value":5.6,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`)
	ts := time.Now()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		r, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		_ = r.Render(1, ts)
	}
}
