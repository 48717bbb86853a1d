package export

import (
	"testing"
)

func TestCompartment(t *testing.T) {
	const base = "https://fhir.example/fhir"
	all, err := newCompartment(base, nil, []string{"Patient", "Observation", "Group", "Coverage"})
	if err != nil {
		t.Fatal(err)
	}
	some, _ := newCompartment(base, map[string]bool{"p1": true}, []string{"Patient", "Observation", "Group", "Coverage"})
	tests := []struct {
		name      string
		typ, body string
		inAll     bool
		inSome    bool
	}{
		{"patient itself", "Patient", `{"resourceType":"Patient","id":"p1"}`, true, true},
		{"other patient", "Patient", `{"resourceType":"Patient","id":"p2"}`, true, false},
		{"patient linked to p1", "Patient", `{"resourceType":"Patient","id":"p3","link":[{"other":{"reference":"Patient/p1"},"type":"seealso"}]}`, true, true},
		{"observation subject", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p1"}}`, true, true},
		{"observation of p2", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p2"}}`, true, false},
		{"observation performer", "Observation", `{"resourceType":"Observation","id":"o","performer":[{"reference":"Patient/p1"}]}`, true, true},
		{"absolute reference here", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"` + base + `/Patient/p1"}}`, true, true},
		{"absolute reference elsewhere", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"https://other/fhir/Patient/p1"}}`, false, false},
		{"reference outside the compartment parameters", "Observation", `{"resourceType":"Observation","id":"o","focus":[{"reference":"Patient/p1"}],"subject":{"reference":"Group/g"}}`, false, false},
		{"no patient at all", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Group/g"}}`, false, false},
		{"group member", "Group", `{"resourceType":"Group","id":"g","member":[{"entity":{"reference":"Patient/p1"}}]}`, true, true},
		{"coverage beneficiary", "Coverage", `{"resourceType":"Coverage","id":"c","beneficiary":{"reference":"Patient/p1"}}`, true, true},
		{"type outside the compartment", "Organization", `{"resourceType":"Organization","id":"x","partOf":{"reference":"Patient/p1"}}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				comp *compartment
				want bool
			}{{all, tt.inAll}, {some, tt.inSome}} {
				got, err := c.comp.contains(tt.typ, []byte(tt.body))
				if err != nil || got != c.want {
					t.Errorf("contains (patients %v) = %v, %v; want %v", c.comp.patients, got, err, c.want)
				}
			}
		})
	}
}

func TestGroupMembers(t *testing.T) {
	c := &compartment{fhirBase: "https://x/fhir"}
	got, err := c.groupMembers([]byte(`{"resourceType":"Group","member":[
		{"entity":{"reference":"Patient/a"}},{"entity":{"reference":"Patient/b"},"inactive":true},
		{"entity":{"reference":"Practitioner/c"}},{"entity":{"reference":"https://x/fhir/Patient/d"}},
		{"entity":{"reference":"https://y/fhir/Patient/e"}}]}`))
	if err != nil || len(got) != 2 || !got["a"] || !got["d"] {
		t.Fatalf("members = %v, %v", got, err)
	}
}

func TestDeletionBundle(t *testing.T) {
	s := &Service{cfg: Config{BaseURL: "https://x"}}
	got := string(s.deletionBundle("Observation", "o-1"))
	want := `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"https://x/fhir/Observation/o-1","request":{"method":"DELETE","url":"Observation/o-1"}}]}`
	if got != want {
		t.Fatalf("got %s", got)
	}
}
