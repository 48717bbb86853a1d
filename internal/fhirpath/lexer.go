package fhirpath

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokOp    // . ( ) [ ] , | = != ~ !~ < > <= >= + - * / &
	tokVar   // %name
	tokThis  // $this, $index, $total
	tokQuote // `delimited identifier`
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9') {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && (src[j] >= '0' && src[j] <= '9') {
					j++
				}
			}
			toks = append(toks, token{tokNumber, src[i:j], i})
			i = j
		case c == '\'':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{tokString, s, i})
			i += n
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil, fmt.Errorf("at %d: unterminated `identifier`", i)
			}
			toks = append(toks, token{tokIdent, src[i+1 : i+1+j], i})
			i += j + 2
		case c == '%' || c == '$':
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("at %d: %c without a name", i, c)
			}
			k := tokVar
			if c == '$' {
				k = tokThis
			}
			toks = append(toks, token{k, src[i+1 : j], i})
			i = j
		default:
			if op := lexOp(src[i:]); op != "" {
				toks = append(toks, token{tokOp, op, i})
				i += len(op)
				continue
			}
			return nil, fmt.Errorf("at %d: unexpected %q", i, c)
		}
	}
	return append(toks, token{tokEOF, "", len(src)}), nil
}

func lexOp(s string) string {
	for _, op := range []string{"!=", "!~", "<=", ">="} {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	if strings.ContainsRune(".()[],|=~<>+-*/&", rune(s[0])) {
		return s[:1]
	}
	return ""
}

// lexString reads a 'quoted' string with FHIRPath escapes; it returns the
// value and the number of bytes consumed.
func lexString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(s) {
				return "", 0, fmt.Errorf("unterminated string")
			}
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'f':
				b.WriteByte('\f')
			default: // \' \" \` \\ \/
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
