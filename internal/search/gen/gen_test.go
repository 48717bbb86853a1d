package main

import (
	"crypto/sha512"
	"encoding/base64"
	"strings"
	"testing"
)

func TestRevertOfType(t *testing.T) {
	tests := []struct{ in, want string }{
		{"(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))",
			"(Observation.value as Quantity) | (Observation.value as SampledData)"},
		{"(Observation.value.ofType(CodeableConcept)).text", "(Observation.value as CodeableConcept).text"},
		{"Condition.onset.ofType(Age) | Condition.onset.ofType(Range)", "Condition.onset.as(Age) | Condition.onset.as(Range)"},
		{"value.ofType(DateTime) | value.ofType(Period)", "value.as(DateTime) | value.as(Period)"},
		{"Patient.name", "Patient.name"},
	}
	for _, tt := range tests {
		if got := revertOfType(tt.in); got != tt.want {
			t.Errorf("revertOfType(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckIntegrity(t *testing.T) {
	data := []byte("package")
	sum := sha512.Sum512(data)
	good := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	if err := checkIntegrity(data, good); err != nil {
		t.Fatal(err)
	}
	err := checkIntegrity([]byte("tampered"), good)
	if err == nil || !strings.HasPrefix(err.Error(), "integrity mismatch: got sha512-") {
		t.Errorf("tampered tarball: %v", err)
	}
}

func TestCorrectionsFailOnDrift(t *testing.T) {
	// A copy without the non-R4 parameters means upstream changed: refuse.
	_, err := correctParams([]*param{{ID: "Patient-name", Code: "name", Type: "string", Base: []string{"Patient"}}})
	if err == nil || err.Error() != "correction: DetectedIssue-status not found to drop" {
		t.Errorf("err = %v", err)
	}
	c := &compartment{Code: "Patient"}
	c.Resource = append(c.Resource, struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	}{Code: "Encounter", Param: []string{"patient"}})
	if err := correctCompartment(c); err == nil ||
		err.Error() != "compartment: Encounter params [patient], expected the npm copy's [subject]" {
		t.Errorf("err = %v", err)
	}
}
