package readers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

// parseDateText reads a date typed as text. Accepted, all as a calendar date:
//
//   - ISO 8601: 2026-12-01 (also 2026/12/01), optionally followed by a
//     midnight time "T00:00:00" or " 00:00:00" as some exports add;
//   - UK day-first: 01/12/2026, 1/12/2026, 01-12-2026, 01.12.2026 (day,
//     month, four-digit year: this is a UK Bacs tool);
//   - month names: "1 Dec 2026", "1 December 2026".
//
// Refused as ambiguous rather than guessed: two-digit years (01/12/26),
// day-first text whose month is over 12 (12/25/2026 is US-style), and
// anything else.
func parseDateText(s string) (time.Time, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return time.Time{}, fmt.Errorf("%w: the date is empty", paybatch.ErrMissingField)
	}
	for _, suffix := range []string{"T00:00:00Z", "T00:00:00", " 00:00:00", " 00:00"} {
		if strings.HasSuffix(t, suffix) && len(t) == 10+len(suffix) {
			t = t[:10]
			break
		}
	}
	parts := splitDate(t)
	if len(parts) == 3 && allDigits(parts[0]) && allDigits(parts[1]) && allDigits(parts[2]) {
		a, b, c := parts[0], parts[1], parts[2]
		switch {
		case len(a) == 4: // year first: ISO
			if t[4] == '.' {
				break
			}
			return mkDate(s, atoi(a), atoi(b), atoi(c))
		case len(c) == 4 && len(a) <= 2 && len(b) <= 2: // day first
			d, m := atoi(a), atoi(b)
			if m > 12 && d <= 12 {
				return time.Time{}, fmt.Errorf("%w: %q looks like month/day/year (US); write it as ISO %04d-%02d-%02d or dd/mm/yyyy",
					paybatch.ErrBadDate, s, atoi(c), d, m)
			}
			return mkDate(s, atoi(c), m, d)
		case len(c) == 2:
			return time.Time{}, fmt.Errorf("%w: %q has a two-digit year, which is ambiguous; write it as ISO yyyy-mm-dd or dd/mm/yyyy",
				paybatch.ErrBadDate, s)
		}
	}
	for _, layout := range []string{"2 Jan 2006", "2 January 2006", "02-Jan-2006", "2-Jan-2006"} {
		if d, err := time.Parse(layout, t); err == nil {
			return d.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a date paybatch reads unambiguously; write it as ISO yyyy-mm-dd (or dd/mm/yyyy)",
		paybatch.ErrBadDate, s)
}

func splitDate(t string) []string {
	for _, sep := range []string{"-", "/", "."} {
		if strings.Count(t, sep) == 2 {
			return strings.Split(t, sep)
		}
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" || len(s) > 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func mkDate(orig string, y, m, d int) (time.Time, error) {
	if m < 1 || m > 12 || d < 1 || d > 31 || y < 1900 || y > 9999 {
		return time.Time{}, fmt.Errorf("%w: %q is not a valid date", paybatch.ErrBadDate, orig)
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d || int(t.Month()) != m {
		return time.Time{}, fmt.Errorf("%w: %q is not a valid date (%s has no day %d)", paybatch.ErrBadDate, orig, time.Month(m), d)
	}
	return t, nil
}

// dateFromSerial converts a spreadsheet date serial number (the value text
// of a numeric cell) to a date. In the 1900 system serial 1 is 1900-01-01
// and serial 60 is the non-existent 1900-02-29 that Lotus 1-2-3 invented
// and Excel kept (refused here); in the 1904 system (the workbook's
// date1904 flag, old Mac Excel) serial 0 is 1904-01-01. A serial with a
// time of day is refused: a collection date is a date.
func dateFromSerial(raw string, date1904 bool) (time.Time, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(raw))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: numeric cell %q is not a date serial", paybatch.ErrBadDate, raw)
	}
	if !d.Equal(d.Truncate(0)) {
		return time.Time{}, fmt.Errorf("%w: date serial %s has a time of day; enter a date only", paybatch.ErrBadDate, d.String())
	}
	if !d.BigInt().IsInt64() {
		return time.Time{}, fmt.Errorf("%w: %s is not a date serial", paybatch.ErrBadDate, d.String())
	}
	n := d.IntPart()
	if n < 0 || n > 2958465 { // 9999-12-31
		return time.Time{}, fmt.Errorf("%w: %d is out of range for a spreadsheet date", paybatch.ErrBadDate, n)
	}
	if date1904 {
		return time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n)), nil
	}
	switch {
	case n == 0:
		return time.Time{}, fmt.Errorf("%w: date serial 0 is not a date (an empty date cell?)", paybatch.ErrBadDate)
	case n == 60:
		return time.Time{}, fmt.Errorf("%w: date serial 60 is 29 February 1900, a day that never existed", paybatch.ErrBadDate)
	case n < 60:
		return time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n)), nil
	}
	return time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n)), nil
}
