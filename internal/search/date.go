package search

import (
	"errors"
	"strconv"
	"time"
)

var errDate = errors.New("not a FHIR date, dateTime or instant")

// ParseDateRange parses a FHIR date, dateTime or instant (YYYY, YYYY-MM,
// YYYY-MM-DD, or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]) into the range its
// precision covers, in UTC (R4 search.html#date, datatypes.html#dateTime).
// A time without a zone is taken as UTC; a date without a time starts at
// midnight UTC.
func ParseDateRange(s string) (DateRange, error) {
	p := dateParser{s: s}
	year := p.digits(4)
	month, day, hour, min, sec, nsec := 1, 1, 0, 0, 0, 0
	unit := func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	loc := time.UTC
	if p.more() {
		month = p.sep('-').digits(2)
		unit = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	}
	if p.more() {
		day = p.sep('-').digits(2)
		unit = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	}
	if p.more() {
		hour = p.sep('T').digits(2)
		min = p.sep(':').digits(2)
		unit = func(t time.Time) time.Time { return t.Add(time.Minute) }
		if p.peek() == ':' {
			sec = p.sep(':').digits(2)
			unit = func(t time.Time) time.Time { return t.Add(time.Second) }
			if p.peek() == '.' {
				var step time.Duration
				nsec, step = p.fraction()
				unit = func(t time.Time) time.Time { return t.Add(step) }
			}
		}
		loc = p.zone()
	}
	if p.err || p.more() || month < 1 || month > 12 || hour > 23 || min > 59 || sec > 59 {
		return DateRange{}, errDate
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, loc)
	if t.Day() != day || year < 1 {
		return DateRange{}, errDate
	}
	return DateRange{Low: t.UnixMicro(), High: unit(t).UnixMicro() - 1}, nil
}

type dateParser struct {
	s   string
	i   int
	err bool
}

func (p *dateParser) more() bool { return !p.err && p.i < len(p.s) }

func (p *dateParser) peek() byte {
	if p.err || p.i >= len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *dateParser) sep(c byte) *dateParser {
	if p.peek() != c {
		p.err = true
	} else {
		p.i++
	}
	return p
}

func (p *dateParser) digits(n int) int {
	if p.err || p.i+n > len(p.s) {
		p.err = true
		return 0
	}
	v := 0
	for _, c := range []byte(p.s[p.i : p.i+n]) {
		if c < '0' || c > '9' {
			p.err = true
			return 0
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v
}

// fraction reads .fff: the nanoseconds and the step its precision implies
// (at least one microsecond, the storage precision).
func (p *dateParser) fraction() (int, time.Duration) {
	p.i++
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	n := p.i - start
	if n == 0 || n > 9 {
		p.err = true
		return 0, 0
	}
	v, _ := strconv.Atoi(p.s[start:p.i])
	step := time.Duration(pow10(9 - n)) // one unit of the last digit, in ns
	nsec := v * int(step)
	if step < time.Microsecond {
		step = time.Microsecond
	}
	return nsec, step
}

func pow10(n int) int {
	v := 1
	for ; n > 0; n-- {
		v *= 10
	}
	return v
}

// zone reads Z, +hh:mm or -hh:mm; no zone is UTC.
func (p *dateParser) zone() *time.Location {
	switch p.peek() {
	case 0:
		return time.UTC
	case 'Z':
		p.i++
		return time.UTC
	case '+', '-':
		sign := 1
		if p.s[p.i] == '-' {
			sign = -1
		}
		p.i++
		h := p.digits(2)
		m := p.sep(':').digits(2)
		if h > 14 || m > 59 {
			p.err = true
		}
		return time.FixedZone("", sign*(h*3600+m*60))
	}
	p.err = true
	return time.UTC
}
