package seed

import (
	"time"
	"unicode/utf8"
)

// jw is an append-only JSON writer. encoding/json's reflection costs several
// microseconds per resource, more than the whole budget of the generator, so
// resources are written field by field into a reused buffer. The writer keeps
// one bit of state: whether the current array or object already holds a value
// and so needs a comma before the next one.
type jw struct {
	b    []byte
	more bool
}

// reset empties the buffer for the next resource, keeping its capacity.
func (w *jw) reset() { w.b, w.more = w.b[:0], false }

func (w *jw) sep() {
	if w.more {
		w.b = append(w.b, ',')
	}
}

// key writes an object key; the value that follows takes no comma.
func (w *jw) key(k string) {
	w.sep()
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
	w.more = false
}

func (w *jw) obj()    { w.sep(); w.b = append(w.b, '{'); w.more = false }
func (w *jw) endObj() { w.b = append(w.b, '}'); w.more = true }
func (w *jw) arr()    { w.sep(); w.b = append(w.b, '['); w.more = false }
func (w *jw) endArr() { w.b = append(w.b, ']'); w.more = true }

// kobj opens an object under key k.
func (w *jw) kobj(k string) { w.key(k); w.obj() }

// karr opens an array under key k.
func (w *jw) karr(k string) { w.key(k); w.arr() }

// str writes a JSON string value.
func (w *jw) str(s string) {
	w.sep()
	w.b = appendQuoted(w.b, s)
	w.more = true
}

// beginStr opens a string value whose content the caller appends to w.b
// (already valid JSON string content); endStr closes it.
func (w *jw) beginStr() { w.sep(); w.b = append(w.b, '"') }
func (w *jw) endStr()   { w.b = append(w.b, '"'); w.more = true }

// kstr writes "k":"v".
func (w *jw) kstr(k, v string) { w.key(k); w.str(v) }

// kraw writes "k":v with v already valid JSON (numbers, true, false).
func (w *jw) kraw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
	w.more = true
}

// kbool writes "k":true or "k":false.
func (w *jw) kbool(k string, v bool) {
	if v {
		w.kraw(k, "true")
	} else {
		w.kraw(k, "false")
	}
}

// kint writes "k":n.
func (w *jw) kint(k string, n int64) {
	w.key(k)
	w.b = appendInt(w.b, n)
	w.more = true
}

// kfixed writes "k":v/10^dec as a decimal with exactly dec fraction digits.
// Values are kept as scaled integers so that the output is the same on every
// platform (no floating point, whose fused multiply-add differs by CPU).
func (w *jw) kfixed(k string, v int64, dec int) {
	w.key(k)
	w.b = appendFixed(w.b, v, dec)
	w.more = true
}

// kdateTime writes a FHIR dateTime with seconds and the given UTC offset in
// minutes (R4 datatypes.html#dateTime). It is also a valid instant.
func (w *jw) kdateTime(k string, unix int64, offMin int) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = appendDateTime(w.b, unix, offMin)
	w.b = append(w.b, '"')
	w.more = true
}

// kdate writes a FHIR date (YYYY-MM-DD) of the local day of unix at offMin.
func (w *jw) kdate(k string, unix int64, offMin int) {
	w.key(k)
	w.b = append(w.b, '"')
	y, m, d := time.Unix(unix+int64(offMin)*60, 0).UTC().Date()
	w.b = appendDate(w.b, y, int(m), d)
	w.b = append(w.b, '"')
	w.more = true
}

// kref writes "k":{"reference":"Type/id"}.
func (w *jw) kref(k, typ string, id *rid) {
	w.kobj(k)
	w.refBody(typ, id)
	w.endObj()
}

// ref writes {"reference":"Type/id"} as an array element.
func (w *jw) ref(typ string, id *rid) {
	w.obj()
	w.refBody(typ, id)
	w.endObj()
}

func (w *jw) refBody(typ string, id *rid) {
	w.key("reference")
	w.b = append(w.b, '"')
	w.b = append(w.b, typ...)
	w.b = append(w.b, '/')
	w.b = append(w.b, id[:]...)
	w.b = append(w.b, '"')
	w.more = true
}

// coding writes one Coding object as an array element.
func (w *jw) coding(c code) {
	w.obj()
	w.kstr("system", c.system)
	w.kstr("code", c.code)
	if c.display != "" {
		w.kstr("display", c.display)
	}
	w.endObj()
}

// kconcept writes a CodeableConcept with one or more codings and the first
// coding's display as its text.
func (w *jw) kconcept(k string, cs ...code) {
	w.kobj(k)
	w.conceptBody(cs...)
	w.endObj()
}

// concept writes a CodeableConcept as an array element.
func (w *jw) concept(cs ...code) {
	w.obj()
	w.conceptBody(cs...)
	w.endObj()
}

func (w *jw) conceptBody(cs ...code) {
	w.karr("coding")
	for _, c := range cs {
		w.coding(c)
	}
	w.endArr()
	if cs[0].display != "" {
		w.kstr("text", cs[0].display)
	}
}

// kconceptList writes "k":[CodeableConcept] with one concept.
func (w *jw) kconceptList(k string, cs ...code) {
	w.karr(k)
	w.concept(cs...)
	w.endArr()
}

// kperiod writes a Period.
func (w *jw) kperiod(k string, start, end int64, offMin int) {
	w.kobj(k)
	w.kdateTime("start", start, offMin)
	if end != 0 {
		w.kdateTime("end", end, offMin)
	}
	w.endObj()
}

// kquantity writes a UCUM Quantity with value v/10^dec.
func (w *jw) kquantity(k string, v int64, dec int, unit string) {
	w.kobj(k)
	w.kfixed("value", v, dec)
	w.kstr("unit", unit)
	w.kstr("system", ucum)
	w.kstr("code", unit)
	w.endObj()
}

// kmoney writes a Money in US dollars from cents.
func (w *jw) kmoney(k string, cents int64) {
	w.kobj(k)
	w.kfixed("value", cents, 2)
	w.kstr("currency", "USD")
	w.endObj()
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. The generator's strings come from
// its own tables, so the fast path (nothing to escape) is the common one.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendInt(b []byte, n int64) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// appendFixed appends v/10^dec with exactly dec fraction digits.
func appendFixed(b []byte, v int64, dec int) []byte {
	if dec == 0 {
		return appendInt(b, v)
	}
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	p := int64(1)
	for range dec {
		p *= 10
	}
	b = appendInt(b, v/p)
	b = append(b, '.')
	frac := v % p
	for p /= 10; p > 0; p /= 10 {
		b = append(b, byte('0'+frac/p))
		frac %= p
	}
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

func appendDate(b []byte, y, m, d int) []byte {
	b = append2(b, y/100)
	b = append2(b, y%100)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	return append2(b, d)
}

// appendDateTime renders unix seconds in local time at offMin minutes east
// of UTC, with the offset: 2019-03-04T09:15:00-05:00.
func appendDateTime(b []byte, unix int64, offMin int) []byte {
	t := time.Unix(unix+int64(offMin)*60, 0).UTC()
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	b = appendDate(b, y, int(m), d)
	b = append(b, 'T')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mm)
	b = append(b, ':')
	b = append2(b, ss)
	if offMin == 0 {
		return append(b, 'Z')
	}
	sign := byte('+')
	if offMin < 0 {
		sign, offMin = '-', -offMin
	}
	b = append(b, sign)
	b = append2(b, offMin/60)
	b = append(b, ':')
	return append2(b, offMin%60)
}
