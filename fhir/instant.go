package fhir

import "time"

// InstantLayout renders a FHIR instant with microsecond precision in UTC,
// the precision fhirgate stores (R4 datatypes.html#instant).
const InstantLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatInstant renders t as a FHIR instant in UTC with microseconds.
func FormatInstant(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(InstantLayout)
}

// ParseInstant parses a FHIR instant: a full date and time with seconds and a
// time zone, fractional seconds optional. Partial dates are not instants.
func ParseInstant(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}
