package search

import (
	"errors"
	"math"
	"strconv"
)

var errNumber = errors.New("not a decimal number")

// ParseNumber parses a decimal as FHIR writes it, with an optional
// exponent, into its value and the range its precision implies: the value
// plus or minus half a unit of its last significant digit (R4
// search.html#number: "100" means [99.5, 100.5), "1e2" means [50, 150)).
func ParseNumber(s string) (NumberValue, error) {
	decimals, exp, ok := scanDecimal(s)
	if !ok {
		return NumberValue{}, errNumber
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return NumberValue{}, errNumber
	}
	half := 0.5 * math.Pow(10, float64(exp-decimals))
	return NumberValue{Value: v, Low: v - half, High: v + half}, nil
}

// scanDecimal checks [-+]?digits[.digits][(e|E)[-+]?digits] and returns the
// number of fraction digits and the exponent.
func scanDecimal(s string) (decimals, exp int, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return 0, 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fs {
			return 0, 0, false
		}
		decimals = i - fs
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 400 || e < -400 {
			return 0, 0, false
		}
		return decimals, e, true
	}
	return decimals, 0, i == len(s)
}
