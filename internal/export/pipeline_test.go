package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineOrder: batches of several types, compressed in parallel,
// land in their files in submission order; barriers report durable sizes
// that hold exactly the batches before them.
func TestPipelineOrder(t *testing.T) {
	dir := t.TempDir()
	p := newPipeline()
	// A resumed part: an existing file with one member already.
	pre := filepath.Join(dir, "A")
	w, _, _ := newPartWriter(newGzip(), pre, "", 0)
	w.write([]byte("a-resumed"))
	size, _ := w.close()
	f, err := os.OpenFile(pre, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.adopt("A", f, size)
	p.start()
	want := map[string]*strings.Builder{"A": {}, "B": {}}
	want["A"].WriteString("a-resumed\n")
	var syncSizes map[string]int64
	for i := 0; i < 200; i++ {
		typ := []string{"A", "B"}[i%3%2]
		line := fmt.Sprintf("%s-%d-%s\n", typ, i, strings.Repeat("x", i))
		want[typ].WriteString(line)
		raw := append(rawPool.Get().([]byte), line...)
		p.submit(typ, filepath.Join(dir, typ), raw)
		if i == 100 {
			rep := p.wait(opSync, "")
			if rep.err != nil {
				t.Fatal(rep.err)
			}
			syncSizes = rep.sizes
			for typ, n := range rep.sizes {
				if st, _ := os.Stat(filepath.Join(dir, typ)); st.Size() != n {
					t.Fatalf("%s: synced size %d, file %d", typ, n, st.Size())
				}
			}
		}
	}
	rep := p.wait(opClose, "B")
	if rep.err != nil || rep.sizes["B"] <= syncSizes["B"] {
		t.Fatalf("close B = %v", rep)
	}
	p.stop()
	for typ, b := range want {
		if got := gunzip(t, filepath.Join(dir, typ)); got != b.String() {
			t.Fatalf("%s holds\n%.200s\nwant\n%.200s", typ, got, b.String())
		}
	}
}
