package search

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

func stdDecode(b []byte) (map[string]any, error) {
	if !json.Valid(b) {
		return nil, bytes.ErrTooLarge
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// TestDecodeMatchesStdlib decodes every synthea-100 resource with Decode
// and encoding/json and compares the results.
func TestDecodeMatchesStdlib(t *testing.T) {
	for _, typ := range syntheaTypes {
		for i, body := range loadSynthea(t, typ) {
			got, err := Decode(body)
			if err != nil {
				t.Fatalf("%s %d: %v", typ, i, err)
			}
			want, _ := stdDecode(body)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %d: Decode differs from encoding/json", typ, i)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []string{
		`{}`, `{"a":[]}`, `{"a":{"b":[1,-2.5e+3,0.0,true,false,null,"x"]}}`,
		`{"s":"q\"b\\s\/n\nt\tr\rb\bf\fu\u00e9\ud83d\ude00 end"}`, ` { "a" : 1 } `,
		`{"lone":"\ud83d\u0041"}`, `{"dup":1,"dup":2}`, `{"utf8":"Zoë ✓"}`,
	}
	for _, in := range tests {
		got, err := Decode([]byte(in))
		want, werr := stdDecode([]byte(in))
		if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v %v, want %#v %v", in, got, err, want, werr)
		}
	}
	for _, bad := range []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
		`{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":tru}`, `{"a":1} x`, `{"a":"x`,
		"{\"a\":\"\xff\"}", `{a:1}`, `{"a":[1 2]}`, `{"a":{"b":1 "c":2}}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	deep := bytes.Repeat([]byte(`{"a":`), 300)
	if _, err := Decode(deep); err == nil {
		t.Error("300 levels accepted")
	}
}

// FuzzDecode checks Decode against encoding/json: the same verdict on
// validity of an object, and the same values when valid.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"a":[1,"x\u00e9",{"b":null}],"c":-1.5e3}`))
	f.Add([]byte(`{"s":"\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b)
		want, werr := stdDecode(b)
		if werr != nil || want == nil {
			if err == nil && want == nil && werr == nil {
				t.Fatalf("%q: accepted null", b)
			}
			return // encoding/json is laxer on some inputs; only check what it accepts
		}
		if err != nil {
			if bytes.Count(b, []byte("{"))+bytes.Count(b, []byte("[")) > maxDepth || !utf8.Valid(b) {
				return // Decode refuses deep nesting and invalid UTF-8; encoding/json does not
			}
			t.Fatalf("%q: Decode failed: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", b, got, want)
		}
	})
}

func benchDecode(b *testing.B, dec func([]byte) (map[string]any, error)) {
	bodies := loadSynthea(b, "ExplanationOfBenefit")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := dec(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B)       { benchDecode(b, Decode) }
func BenchmarkDecodeStdlib(b *testing.B) { benchDecode(b, stdDecode) }
