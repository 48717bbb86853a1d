//go:build race

package match

// syntheaPerFile caps the synthea resources the differential test loads
// per type under the race detector, which slows the matcher tenfold. The
// whole data set runs without -race (go test ./..., and a separate step
// of .ci/run); the race run checks a sample, so CI stays in its budget.
const syntheaPerFile = 1500
