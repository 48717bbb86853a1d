package loader

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// FuzzRead feeds arbitrary input through the reader and the parser: no
// panic, and every non-blank line comes out once, with its number, either
// parsed or with an error.
func FuzzRead(f *testing.F) {
	f.Add([]byte("{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\n{\"resourceType\":\"Patient\"}\r\n"))
	f.Add([]byte("\ufeff{\"resourceType\":\"Observation\",\"id\":\"o\",\"status\":\"final\"}"))
	f.Add([]byte("\x1f\x8bnot really gzip"))
	f.Add([]byte("[1,2]\n{\"resourceType\":\"Spaceship\",\"id\":\"x\"}\n" + string(bytes.Repeat([]byte("x"), 300))))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxLine = 200
		src := Source{Name: "fuzz", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
		rd := &reader{srcs: []Source{src}, maxLine: maxLine}
		out := make(chan *chunk, 1024)
		errc := make(chan error, 1)
		go func() { errc <- rd.run(context.Background(), out); close(out) }()
		var lines []int64
		eof := false
		for c := range out {
			parseChunk(c, nil)
			for _, r := range c.recs {
				if (r.res == nil) == (r.err == nil) {
					t.Fatalf("line %d: res %v, err %v", r.line, r.res, r.err)
				}
				if r.res != nil && (r.res.ID == "" || r.res.Type == "") {
					t.Fatalf("line %d parsed without type or id", r.line)
				}
				lines = append(lines, r.line)
			}
			eof = eof || c.eof
		}
		if err := <-errc; err != nil {
			if !bytes.HasPrefix(data, gzipMagic) {
				t.Fatalf("plain input failed: %v", err)
			}
			return // not gzip after all
		}
		if !eof {
			t.Fatal("no end of file")
		}
		if bytes.HasPrefix(data, gzipMagic) {
			return
		}
		var want []int64
		for i, l := range bytes.Split(data, []byte("\n")) {
			if i == 0 {
				l = bytes.TrimPrefix(l, bom)
			}
			if len(bytes.TrimSpace(l)) > 0 {
				want = append(want, int64(i+1))
			}
		}
		if len(lines) != len(want) {
			t.Fatalf("lines %v, want %v", lines, want)
		}
		for i := range want {
			if lines[i] != want[i] {
				t.Fatalf("lines %v, want %v", lines, want)
			}
		}
	})
}
