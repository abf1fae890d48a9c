package reconcile

import (
	"regexp"
	"strings"
)

// csvFileRE finds the file DuckDB's CSV reader names in its message.
var csvFileRE = regexp.MustCompile(`(?m)^\s*file = (.+)$`)

// csvErrorFile is the file DuckDB's message names, for an error of a query
// over several files ("" when it names none).
func csvErrorFile(err error) string {
	if err == nil {
		return ""
	}
	if m := csvFileRE.FindStringSubmatch(err.Error()); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}
