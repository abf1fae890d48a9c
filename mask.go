package paybatch

import "strings"

// MaskCardNumbers is the one masking rule for card data on every path out
// (reports, exports, logs, errors, --json, rejects.csv, the journal). It replaces every run of 13 to 19 digits — optionally grouped
// by single spaces or hyphens, as card numbers are written — by its first 6
// and last 4 digits with the middle digits as '*' ("411111******1111").
// Shorter and longer digit runs (ids, amounts, references) are left alone.
func MaskCardNumbers(s string) string {
	if !hasLongDigitRun(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) || (i > 0 && isDigit(s[i-1])) {
			b.WriteByte(s[i])
			i++
			continue
		}
		// Scan a run of digits with single space/hyphen separators.
		j, digits, lastDigitEnd := i, 0, i
		for j < len(s) {
			if isDigit(s[j]) {
				digits++
				j++
				lastDigitEnd = j
				continue
			}
			if (s[j] == ' ' || s[j] == '-') && j+1 < len(s) && isDigit(s[j+1]) && isDigit(s[j-1]) {
				j++
				continue
			}
			break
		}
		run := s[i:lastDigitEnd]
		if digits >= 13 && digits <= 19 {
			b.WriteString(maskDigits(run, digits))
		} else {
			b.WriteString(run)
		}
		i = lastDigitEnd
	}
	return b.String()
}

func maskDigits(run string, digits int) string {
	out := make([]byte, 0, digits)
	n := 0
	for k := 0; k < len(run); k++ {
		c := run[k]
		if !isDigit(c) {
			continue
		}
		if n < 6 || n >= digits-4 {
			out = append(out, c)
		} else {
			out = append(out, '*')
		}
		n++
	}
	return string(out)
}

func hasLongDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch {
		case isDigit(s[i]):
			n++
			if n >= 13 {
				return true
			}
		case s[i] == ' ' || s[i] == '-':
		default:
			n = 0
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
