package search

import "math"

// MaxCompositeParts is the most components a composite row of the index
// holds (R4's composites have two or three); rows of more are not
// indexed, and queries on such parameters are refused.
const MaxCompositeParts = 3

// CompositeCell is one component of a composite row as the index stores
// it (the columns of idx_composite): System and Code (token, string norm,
// reference key, uri, quantity code), Low and High a number or date
// range, CanonicalCode and CanonicalValue a quantity's UCUM form. The
// store writes cells and the in-memory matcher compares them, so both
// derive them here.
type CompositeCell struct {
	System, Code   string
	Low, High      float64
	CanonicalCode  string
	CanonicalValue float64
}

// CellOf is the cell of one component value.
func CellOf(v *Value) CompositeCell {
	switch v.Type {
	case TypeToken:
		return CompositeCell{System: v.Token.System, Code: v.Token.Code}
	case TypeString:
		return CompositeCell{Code: v.String.Norm}
	case TypeReference:
		return CompositeCell{Code: RefKey(v.Reference)}
	case TypeURI:
		return CompositeCell{Code: v.URI}
	case TypeDate:
		return CompositeCell{Low: float64(v.Date.Low), High: float64(v.Date.High)}
	case TypeNumber:
		x := Finite(v.Number.Value, v.Number.Low, v.Number.High)
		return CompositeCell{Low: x, High: x}
	case TypeQuantity:
		q := &v.Quantity
		x := Finite(q.Value, q.Low, q.High)
		return CompositeCell{System: q.System, Code: q.Code, Low: x, High: x, CanonicalCode: q.CanonicalCode,
			CanonicalValue: Finite(q.Canonical.Value, q.Canonical.Low, q.Canonical.High)}
	}
	return CompositeCell{}
}

// RefKey is how a reference component is stored in a composite row: its
// URL, or Type/id.
func RefKey(r ReferenceValue) string {
	if r.URL != "" {
		return r.URL
	}
	return r.Type + "/" + r.ID
}

// Finite is the value a number or quantity row stores: the value itself,
// or a finite bound when it is infinite or NaN, else 0.
func Finite(v, lo, hi float64) float64 {
	switch {
	case !math.IsInf(v, 0) && !math.IsNaN(v):
		return v
	case !math.IsInf(lo, 0):
		return lo
	case !math.IsInf(hi, 0):
		return hi
	}
	return 0
}
