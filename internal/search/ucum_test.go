package search

import (
	"math"
	"testing"
)

func TestCanonicalUnit(t *testing.T) {
	tests := []struct {
		code   string
		factor float64
		canon  string
	}{
		{"mg", 1e-3, "g"},
		{"kg", 1e3, "g"},
		{"g", 1, "g"},
		{"mg/dL", 1e-2, "L-1.g"},
		{"g/L", 1, "L-1.g"},
		{"mmol/L", 1e-3, "L-1.mol"},
		{"mm[Hg]", 1e-3, "m[Hg]"},
		{"min", 60, "s"},
		{"h", 3600, "s"},
		{"/min", 1.0 / 60, "s-1"},
		{"kg/m2", 1e3, "g.m-2"},
		{"10*3/uL", 1e3 / 1e-6, "L-1"},
		{"10*9/L", 1e9, "L-1"},
		{"%", 0.01, "1"},
		{"{beats}/min", 1.0 / 60, "s-1"},
		{"mL", 1e-3, "L"},
		{"dL", 1e-1, "L"},
		{"dag", 10, "g"},
		{"cm", 1e-2, "m"},
		{"a", 31557600, "s"},
		{"m[iU]/L", 1e-3, "L-1.[iU]"},
		{"1", 1, "1"},
		{"mol/mol", 1, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			f, canon, ok := CanonicalUnit(tt.code)
			if !ok || canon != tt.canon || math.Abs(f-tt.factor) > 1e-12*math.Abs(tt.factor) {
				t.Errorf("got %v %q %v, want %v %q", f, canon, ok, tt.factor, tt.canon)
			}
		})
	}
	for _, bad := range []string{"", "furlong", "kmin", "[foo]", "m{x", "10*x", "mg/", "g.", "xg"} {
		if f, c, ok := CanonicalUnit(bad); ok {
			t.Errorf("%q accepted as %v %q", bad, f, c)
		}
	}
}

func TestQuantityCanonical(t *testing.T) {
	r := extract(t, "Observation", `{"resourceType":"Observation","valueQuantity":{"value":5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}`)
	q := quantitiesOf(r, "value-quantity")[0]
	if q.CanonicalCode != "g" || !near(q.Canonical.Value, 0.005) || !near(q.Canonical.Low, 0.0045) || !near(q.Canonical.High, 0.0055) {
		t.Errorf("canonical %+v", q)
	}
	r = extract(t, "Observation", `{"resourceType":"Observation","valueQuantity":{"value":5,"system":"http://other","code":"mg"}}`)
	if q := quantitiesOf(r, "value-quantity")[0]; q.CanonicalCode != "" {
		t.Errorf("non-UCUM canonicalized: %+v", q)
	}
	v := oneClause(t, "Observation", "value-quantity=5.4|http://unitsofmeasure.org|mg").Values[0].Quantity
	if v.CanonicalCode != "g" || !near(v.Canonical.Value, 0.0054) {
		t.Errorf("query canonical %+v", v)
	}
}
