package sqlstore

import (
	"strconv"
	"strings"
)

// dialect holds the few real differences between SQLite and PostgreSQL that
// the shared SQL of this package needs. SQL is written once with ?
// placeholders; rebind numbers them for PostgreSQL. Nothing else is
// rewritten: where the dialects differ in more than placeholders, the code
// asks the dialect explicitly.
type dialect struct {
	name string
	pg   bool
}

var (
	sqliteDialect   = dialect{name: "sqlite"}
	postgresDialect = dialect{name: "postgres", pg: true}
)

// rebind turns ? placeholders into $1, $2, ... for PostgreSQL. Statements of
// this package hold no ? inside string literals.
func (d dialect) rebind(q string) string {
	if !d.pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// forUpdate is the row-locking suffix of a SELECT inside a write
// transaction. SQLite has one writer at a time, so it needs none.
func (d dialect) forUpdate() string {
	if d.pg {
		return " FOR UPDATE"
	}
	return ""
}
