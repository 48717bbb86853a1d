package search

import (
	"testing"
)

func TestParseDateRange(t *testing.T) {
	tests := []struct {
		in        string
		low, high string
	}{
		{"2024", "2024-01-01T00:00:00Z", "2024-12-31T23:59:59.999999Z"},
		{"2024-02", "2024-02-01T00:00:00Z", "2024-02-29T23:59:59.999999Z"},
		{"2023-02-28", "2023-02-28T00:00:00Z", "2023-02-28T23:59:59.999999Z"},
		{"2024-01-01T10:00Z", "2024-01-01T10:00:00Z", "2024-01-01T10:00:59.999999Z"},
		{"2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.999999Z"},
		{"2024-01-01T10:00:00-05:00", "2024-01-01T15:00:00Z", "2024-01-01T15:00:00.999999Z"},
		{"2024-01-01T10:00:00+14:00", "2023-12-31T20:00:00Z", "2023-12-31T20:00:00.999999Z"},
		{"2024-01-01T10:00:00.12Z", "2024-01-01T10:00:00.12Z", "2024-01-01T10:00:00.129999Z"},
		{"2024-01-01T10:00:00.123456789Z", "2024-01-01T10:00:00.123456Z", "2024-01-01T10:00:00.123456Z"},
		{"2024-01-01T10:00:00", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.999999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDateRange(tt.in)
			want := DateRange{Low: utc(tt.low), High: utc(tt.high)}
			if err != nil || got != want {
				t.Errorf("got %+v %v, want %+v", got, err, want)
			}
		})
	}
	for _, bad := range []string{"", "20", "2024-1", "2024-00", "2024-13", "2023-02-29", "2024-01-01T", "2024-01-01T10",
		"2024-01-01T24:00Z", "2024-01-01T10:60Z", "2024-01-01T10:00:60Z", "2024-01-01T10:00:00.Z", "2024-01-01T10:00:00+15:00",
		"2024-01-01T10:00:00+0100", "2024-01-01 10:00", "0000", "2024-01-01x", "abcd"} {
		if r, err := ParseDateRange(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, r)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in              string
		value, low, hig float64
	}{
		{"100", 100, 99.5, 100.5},
		{"100.00", 100, 99.995, 100.005},
		{"-0.5", -0.5, -0.55, -0.45},
		{"1e2", 100, 50, 150},
		{"1.5E-3", 0.0015, 0.00145, 0.00155},
		{"+7", 7, 6.5, 7.5},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseNumber(tt.in)
			if err != nil || n.Value != tt.value || !near(n.Low, tt.low) || !near(n.High, tt.hig) {
				t.Errorf("got %+v %v", n, err)
			}
		})
	}
	for _, bad := range []string{"", "-", ".5", "5.", "1e", "1e999", "0x10", "1,5", "NaN", "Inf", "1 "} {
		if n, err := ParseNumber(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, n)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := map[string]string{"abc": "abc", "ABC": "abc", "Zoë": "zoe", "ÅSA Ñandú": "asa nandu", "Straße": "straße", "": ""}
	for in, want := range tests {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseReferenceValue(t *testing.T) {
	tests := []struct {
		in   string
		want ReferenceValue
		ok   bool
	}{
		{"Patient/1", ReferenceValue{Type: "Patient", ID: "1"}, true},
		{"Patient/1/_history/3", ReferenceValue{Type: "Patient", ID: "1"}, true},
		{"http://x/fhir/Patient/1", ReferenceValue{Type: "Patient", ID: "1", URL: "http://x/fhir/Patient/1"}, true},
		{"http://x/ValueSet/v|1.2", ReferenceValue{Type: "ValueSet", ID: "v", URL: "http://x/ValueSet/v"}, true},
		{"http://x/some/canonical", ReferenceValue{URL: "http://x/some/canonical"}, true},
		{"urn:uuid:9", ReferenceValue{URL: "urn:uuid:9"}, true},
		{"#c1", ReferenceValue{}, false},
		{"Foo/1", ReferenceValue{}, false},
		{"a/Patient/1", ReferenceValue{}, false},
		{"Patient/", ReferenceValue{}, false},
		{"", ReferenceValue{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseReference(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseReference(%q) = %+v %v, want %+v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
