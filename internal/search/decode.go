package search

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode decodes a JSON resource as the extractor evaluates it: objects
// (map[string]any), arrays ([]any), strings, booleans, nil and json.Number
// (numbers keep their text, whose precision number and quantity search
// depend on).
//
// It is a small recursive-descent parser rather than encoding/json because
// extraction runs on every write: it is about three times faster on
// synthea resources and yields the same values (TestDecodeMatchesStdlib).
func Decode(body []byte) (map[string]any, error) {
	d := decoder{b: body}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, fmt.Errorf("search: decode resource: not a JSON object")
	}
	v, err := d.value(0)
	if err == nil {
		d.space()
		if d.i != len(d.b) {
			err = d.errorf("data after the object")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("search: decode resource: %w", err)
	}
	return v.(map[string]any), nil
}

// maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxDepth = 256

type decoder struct {
	b []byte
	i int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.errorf("nested too deep")
	}
	d.space()
	if d.i >= len(d.b) {
		return nil, d.errorf("unexpected end")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case d.literal("true"):
		return true, nil
	case d.literal("false"):
		return false, nil
	case d.literal("null"):
		return nil, nil
	}
	return nil, d.errorf("unexpected %q", d.b[d.i])
}

func (d *decoder) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

func (d *decoder) object(depth int) (any, error) {
	d.i++ // {
	m := make(map[string]any, 8)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errorf("want a member name")
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errorf("want ':'")
		}
		d.i++
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, d.errorf("want ',' or '}'")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.i++ // [
	a := make([]any, 0, 4)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, d.errorf("unexpected end")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return a, nil
		default:
			return nil, d.errorf("want ',' or ']'")
		}
	}
}

// key reads a member name, sharing the string of common FHIR element
// names instead of allocating one per member.
func (d *decoder) key() (string, error) {
	end := d.i + 1
	for end < len(d.b) && d.b[end] != '"' && d.b[end] != '\\' && d.b[end] >= 0x20 {
		end++
	}
	if end < len(d.b) && d.b[end] == '"' {
		if k, ok := commonKeys[string(d.b[d.i+1:end])]; ok { // no allocation: see Go's map index by string(bytes)
			d.i = end + 1
			return k, nil
		}
	}
	return d.str()
}

// commonKeys are element names frequent enough in FHIR JSON to share.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range strings.Fields(`resourceType id meta versionId lastUpdated profile tag security source
		text status div extension url valueString valueCode valueBoolean valueDecimal valueInteger valueCoding
		valueQuantity valueCodeableConcept valueReference valueDateTime valuePeriod value system code display
		coding reference type identifier use period start end subject patient encounter effectiveDateTime issued
		category performer provider insurer insurance created billablePeriod item sequence productOrService
		servicedPeriod locationCodeableConcept net adjudication amount currency total payment focal coverage
		claim outcome diagnosis careTeam referral facility unit given family name prefix suffix line city state
		postalCode country address telecom gender birthDate contained class serviceProvider participant
		individual location reasonCode result occurrenceDateTime vaccineCode primarySource medicationCodeableConcept
		intent authoredOn requester dosageInstruction onsetDateTime recordedDate abatementDateTime clinicalStatus
		verificationStatus performedPeriod entry resource fullUrl request method`) {
		m[k] = k
	}
	return m
}()

// str reads a string; the common case, no escapes, is one allocation.
func (d *decoder) str() (string, error) {
	d.i++ // "
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return "", d.errorf("invalid UTF-8 in string")
			}
			return string(s), nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", d.errorf("unterminated string")
}

var errEscape = errors.New("invalid escape")

// escaped finishes a string that holds backslash escapes.
func (d *decoder) escaped(start int) (string, error) {
	buf := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(buf) {
				return "", d.errorf("invalid UTF-8 in string")
			}
			return string(buf), nil
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			break
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errorf("%v", errEscape)
			}
			if utf16.IsSurrogate(r) {
				// A pair combines; a lone surrogate becomes U+FFFD and the
				// next escape is read on its own (as encoding/json does).
				hi := r
				r = utf8.RuneError
				if d.i+6 <= len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					if r2, ok := d.hex4(); ok {
						if c := utf16.DecodeRune(hi, r2); c != utf8.RuneError {
							r = c
						} else {
							d.i = save
						}
					} else {
						d.i = save
					}
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.errorf("%v", errEscape)
		}
	}
	return "", d.errorf("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(v), true
}

// number reads a JSON number (RFC 8259 §6) and keeps its text.
func (d *decoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.digits()
	default:
		return nil, d.errorf("invalid number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	return json.Number(d.b[start:d.i]), nil
}

func (d *decoder) digits() int {
	n := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}
