package seed

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
)

// res is one generated resource, parsed.
type res struct {
	typ, id string
	raw     []byte
	m       map[string]any
}

// dataset holds a generated data set in memory, for tests only.
type dataset struct {
	list  []*res
	byRef map[string]*res // "Type/id"
}

func generateSet(t testing.TB, opts Options) *dataset {
	t.Helper()
	ds := &dataset{byRef: map[string]*res{}}
	err := Generate(context.Background(), opts, func(typ, id string, b []byte) error {
		r := &res{typ: typ, id: id, raw: append([]byte(nil), b...)}
		if err := json.Unmarshal(b, &r.m); err != nil {
			t.Fatalf("%s/%s: invalid JSON: %v\n%s", typ, id, err, b)
		}
		if _, dup := ds.byRef[typ+"/"+id]; dup {
			t.Fatalf("duplicate resource %s/%s", typ, id)
		}
		ds.byRef[typ+"/"+id] = r
		ds.list = append(ds.list, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return ds
}

func (ds *dataset) ofType(typ string) []*res {
	var out []*res
	for _, r := range ds.list {
		if r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}

// digest hashes the whole output of Generate, types and ids included.
func digest(t testing.TB, opts Options) [32]byte {
	t.Helper()
	h := sha256.New()
	err := Generate(context.Background(), opts, func(typ, id string, b []byte) error {
		h.Write([]byte(typ + "\x00" + id + "\x00"))
		h.Write(b)
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// refs returns every Reference.reference string in v.
func refs(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "reference" {
					out = append(out, s)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// path follows object keys and array indexes ("0") through v.
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch kk := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[kk]
		case int:
			a, ok := v.([]any)
			if !ok || kk >= len(a) {
				return nil
			}
			v = a[kk]
		}
	}
	return v
}

func str(v any, keys ...any) string {
	s, _ := path(v, keys...).(string)
	return s
}
