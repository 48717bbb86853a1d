//go:build !race

package match

// syntheaPerFile: no cap without the race detector (see race_test.go).
const syntheaPerFile = 0
