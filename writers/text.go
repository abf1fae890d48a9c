package writers

import "github.com/paybatch/paybatch"

// NeedsNeutralising reports whether a text cell would be taken as a formula
// (or a DDE/command payload) by a spreadsheet program: it starts with '=',
// '+', '-', '@', TAB or CR (the OWASP "CSV injection" set).
func NeedsNeutralising(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// NeutraliseCSV returns s as it must appear in a CSV field: text that a
// spreadsheet would evaluate gets a leading apostrophe (the quote prefix a
// spreadsheet shows as plain text), and card-number-looking digit runs are
// masked.
func NeutraliseCSV(s string) string {
	s = paybatch.MaskCardNumbers(s)
	if NeedsNeutralising(s) {
		return "'" + s
	}
	return s
}
