package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/internal/seed"
)

// runCLI runs the root command in-process, as main does.
func runCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// readNDJSON returns the lines of an NDJSON file, gunzipping .gz files.
func readNDJSON(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	var lines [][]byte
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestSeedCommandWritesOneFilePerType(t *testing.T) {
	for _, tc := range []struct {
		name string
		gzip bool
		ext  string
	}{{"plain", false, ".ndjson"}, {"gzip", true, ".ndjson.gz"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			args := []string{"seed", "--patients", "12", "--seed", "3", "--out", dir}
			if tc.gzip {
				args = append(args, "--gzip")
			}
			stdout, _, err := runCLI(t, context.Background(), args...)
			if err != nil {
				t.Fatalf("seed: %v", err)
			}
			want, err := seed.Counts(seed.Options{Patients: 12, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(want) {
				t.Fatalf("%d files in %s, want %d (one per type): %v", len(entries), dir, len(want), entries)
			}
			for typ, n := range want {
				path := filepath.Join(dir, typ+tc.ext)
				lines := readNDJSON(t, path)
				if len(lines) != n {
					t.Fatalf("%s: %d lines, want %d", path, len(lines), n)
				}
				for _, l := range lines {
					var r struct{ ResourceType, ID string }
					if err := json.Unmarshal(l, &r); err != nil || r.ResourceType != typ || r.ID == "" {
						t.Fatalf("%s: bad line %.200s (%v)", path, l, err)
					}
				}
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
					t.Fatalf("%s: mode %v, %v", path, fi.Mode(), err)
				}
			}
			if strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, "resources/s") ||
				!strings.Contains(stdout, "Patient=12 ") || !strings.Contains(stdout, "Group=7") {
				t.Fatalf("summary is not the expected one line: %q", stdout)
			}
		})
	}
}

// dirDigest hashes every file of dir by name and content.
func dirDigest(t *testing.T, dir string) [32]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(e.Name() + "\x00"))
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func TestSeedCommandIsDeterministic(t *testing.T) {
	base := t.TempDir()
	run := func(name, seedArg string) [32]byte {
		dir := filepath.Join(base, name)
		if _, _, err := runCLI(t, context.Background(), "seed", "--patients", "20", "--seed", seedArg, "--out", dir); err != nil {
			t.Fatal(err)
		}
		return dirDigest(t, dir)
	}
	a, b, c := run("a", "9"), run("b", "9"), run("c", "10")
	if a != b {
		t.Fatal("two runs with the same --patients and --seed wrote different files")
	}
	if a == c {
		t.Fatal("a different --seed wrote the same files")
	}
}

func TestSeedCommandErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no out", []string{"seed", "--patients", "3"}, "seed: --out is required: name the directory to write the NDJSON files to, e.g. --out ./seed-data"},
		{"negative patients", []string{"seed", "--patients", "-1", "--out", t.TempDir()}, "seed: --patients must be between 0 and 10000000, got -1; try --patients 100"},
		{"too many patients", []string{"seed", "--patients", "10000001", "--out", t.TempDir()}, "seed: --patients must be between 0 and 10000000, got 10000001; try --patients 100"},
		{"out is a file", []string{"seed", "--patients", "3", "--out", file}, "seed: create output directory: mkdir " + file + ": not a directory; check that --out " + file + " is a directory you can write to"},
		{"extra argument", []string{"seed", "--out", t.TempDir(), "extra"}, `unknown command "extra" for "fhirgate seed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, context.Background(), tc.args...)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSeedCommandInterruptedWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := runCLI(t, ctx, "seed", "--patients", "500", "--out", dir)
	if err == nil || err.Error() != "seed: interrupted; no file was written to "+dir {
		t.Fatalf("error %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("interrupted run left %d files: %v", len(entries), entries)
	}
}
