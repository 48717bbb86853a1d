package search

import (
	"slices"
	"testing"
)

const tagJSON = `{"code":"SUBSETTED","display":"subsetted","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}`

func TestSubset(t *testing.T) {
	obs := `{"resourceType":"Observation","id":"o1","meta":{"versionId":"2"},"text":{"div":"x"},"status":"final",` +
		`"_status":{"id":"s"},"code":{"text":"c"},"subject":{"reference":"Patient/1"},"valueQuantity":{"value":1},"note":[{"text":"n"}]}`
	tests := []struct {
		name     string
		body     string
		summary  Summary
		elements []string
		want     string
	}{
		{"elements keep mandatory and choice", obs, "", []string{"value"},
			`{"resourceType":"Observation","id":"o1","meta":{"tag":[` + tagJSON + `],"versionId":"2"},"status":"final","_status":{"id":"s"},"code":{"text":"c"},"valueQuantity":{"value":1}}`},
		{"summary true", obs, SummaryTrue, nil,
			`{"resourceType":"Observation","id":"o1","meta":{"tag":[` + tagJSON + `],"versionId":"2"},"status":"final","_status":{"id":"s"},"code":{"text":"c"},"subject":{"reference":"Patient/1"},"valueQuantity":{"value":1}}`},
		{"summary text", obs, SummaryText, nil,
			`{"resourceType":"Observation","id":"o1","meta":{"tag":[` + tagJSON + `],"versionId":"2"},"text":{"div":"x"},"status":"final","_status":{"id":"s"},"code":{"text":"c"}}`},
		{"summary data", obs, SummaryData, nil,
			`{"resourceType":"Observation","id":"o1","meta":{"tag":[` + tagJSON + `],"versionId":"2"},"status":"final","_status":{"id":"s"},"code":{"text":"c"},"subject":{"reference":"Patient/1"},"valueQuantity":{"value":1},"note":[{"text":"n"}]}`},
		{"no meta gets one after id", `{"resourceType":"Patient","id":"p","gender":"x","photo":[]}`, "", []string{"gender"},
			`{"resourceType":"Patient","id":"p","meta":{"tag":[` + tagJSON + `]},"gender":"x"}`},
		{"nothing removed", `{"resourceType":"Patient","id":"p"}`, SummaryTrue, nil, `{"resourceType":"Patient","id":"p"}`},
		{"summary false", obs, SummaryFalse, nil, obs},
		{"already tagged", `{"resourceType":"Patient","meta":{"tag":[` + tagJSON + `]},"photo":[]}`, SummaryTrue, nil,
			`{"resourceType":"Patient","meta":{"tag":[` + tagJSON + `]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Subset(resourceTypeOf(tt.body), []byte(tt.body), tt.summary, tt.elements)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := Subset("Patient", []byte(`{"resourceType":"Patient","meta":1,"photo":[]}`), SummaryTrue, nil); err == nil ||
		err.Error() != "search: subset: meta is not an object" {
		t.Errorf("bad meta: %v", err)
	}
	if _, err := Subset("Patient", []byte(`[]`), SummaryTrue, nil); err == nil || err.Error() != "search: subset: not a JSON object" {
		t.Errorf("array: %v", err)
	}
}

func resourceTypeOf(body string) string {
	m, _ := Decode([]byte(body))
	s, _ := m["resourceType"].(string)
	return s
}

func TestSummaryElements(t *testing.T) {
	if got := SummaryElements("Patient"); !slices.Contains(got, "birthDate") || !slices.Contains(got, "deceased") || slices.Contains(got, "photo") {
		t.Errorf("Patient summary %v", got)
	}
	if got := MandatoryElements("Observation"); !slices.Equal(got, []string{"status", "code"}) {
		t.Errorf("Observation mandatory %v", got)
	}
	if got := SummaryElements("SubscriptionStatus"); got != nil {
		t.Errorf("R4B type present: %v", got)
	}
}
