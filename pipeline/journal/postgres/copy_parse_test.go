package postgres

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

func TestParseInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		bits uint
		want int64
		ok   bool
	}{
		{"0", 64, 0, true},
		{"-0", 64, 0, true},
		{"42", 32, 42, true},
		{"9223372036854775807", 64, 9223372036854775807, true},
		{"-9223372036854775808", 64, -9223372036854775808, true},
		{"9223372036854775808", 64, 0, false},
		{"-9223372036854775809", 64, 0, false},
		{"99999999999999999999", 64, 0, false},
		{"2147483647", 32, 2147483647, true},
		{"-2147483648", 32, -2147483648, true},
		{"2147483648", 32, 0, false},
		{"", 64, 0, false},
		{"-", 64, 0, false},
		{"+1", 64, 0, false},
		{"1.5", 64, 0, false},
		{"1e3", 64, 0, false},
		{" 1", 64, 0, false},
		{"0x10", 64, 0, false},
	} {
		got, err := parseInt([]byte(c.in), c.bits)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseInt(%q, %d) = %d, %v; want %d, ok %v", c.in, c.bits, got, err, c.want, c.ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		date bool
		want time.Time
		ok   bool
	}{
		{"2026-02-28", true, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), true},
		{"2024-02-29", true, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"2026-02-29", true, time.Time{}, false}, // would normalise to March 1
		{"2026-13-01", true, time.Time{}, false},
		{"2026-00-10", true, time.Time{}, false},
		{"0001-01-01", true, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"2026-01-01 BC", true, time.Time{}, false},
		{"12026-01-01", true, time.Time{}, false},
		{"infinity", true, time.Time{}, false},
		{"2026-1-01", true, time.Time{}, false},
		{"2026-01-02 03:04:05", true, time.Time{}, false},
		{"2026-01-02 03:04:05", false, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), true},
		{"2026-01-02 03:04:05.1", false, time.Date(2026, 1, 2, 3, 4, 5, 100000000, time.UTC), true},
		{"2026-01-02 03:04:05.123456", false, time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), true},
		{"2026-01-02 03:04:05.000001", false, time.Date(2026, 1, 2, 3, 4, 5, 1000, time.UTC), true},
		{"2026-01-02 03:04:05.1234567", false, time.Time{}, false},
		{"2026-01-02 03:04:05.", false, time.Time{}, false},
		{"2026-01-02 03:04:05+00", false, time.Time{}, false},
		{"2026-01-02 24:00:00", false, time.Time{}, false},
		{"2026-01-02 23:60:00", false, time.Time{}, false},
		{"2026-01-02 23:59:60", false, time.Time{}, false},
		{"2026-01-02T03:04:05", false, time.Time{}, false},
		{"2026-01-02", false, time.Time{}, false},
	} {
		got, err := parseTime([]byte(c.in), c.date)
		if (err == nil) != c.ok || !got.Equal(c.want) {
			t.Errorf("parseTime(%q, %v) = %v, %v; want %v, ok %v", c.in, c.date, got, err, c.want, c.ok)
		}
	}
}

// parseInt agrees with strconv.ParseInt on every input it accepts, and
// refuses what strconv refuses (it also refuses a plus sign).
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-1", "9223372036854775807", "-9223372036854775808", "2147483648", "+5", "", "1_000"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, wide bool) {
		bits := uint(32)
		if wide {
			bits = 64
		}
		got, err := parseInt([]byte(s), bits)
		want, werr := strconv.ParseInt(s, 10, int(bits))
		if err == nil && (werr != nil || got != want) {
			t.Fatalf("parseInt(%q, %d) = %d; strconv: %d, %v", s, bits, got, want, werr)
		}
		if err != nil && werr == nil && s[0] != '+' {
			t.Fatalf("parseInt(%q, %d) refused (%v); strconv reads %d", s, bits, err, want)
		}
	})
}

// parseTime reads exactly what time.Parse reads in the layouts
// PostgreSQL's ISO output uses, and refuses the rest.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-02-28", "2024-02-29 23:59:59.999999", "2026-02-30", "2026-01-02 03:04:05.1", "0000-01-01"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, date bool) {
		got, err := parseTime([]byte(s), date)
		layout := "2006-01-02 15:04:05.999999"
		if date {
			layout = time.DateOnly
		}
		want, werr := time.Parse(layout, s)
		if err == nil && (werr != nil || !got.Equal(want)) {
			t.Fatalf("parseTime(%q, %v) = %v; time.Parse: %v, %v", s, date, got, want, werr)
		}
	})
}

// unescape undoes what PostgreSQL's COPY text format escapes: every
// byte string (but NUL, which text cannot hold) comes back unchanged
// from its escaped form.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"plain", "tab\there", "back\\slash", "\\N", "\b\f\v\r\n", "é 💷"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if bytes.IndexByte([]byte(s), 0) >= 0 {
			return
		}
		esc := copyEscape(s)
		got, err := unescape(nil, esc)
		if err != nil || string(got) != s {
			t.Fatalf("unescape(%q) = %q, %v; want %q", esc, got, err, s)
		}
	})
}

// copyEscape is PostgreSQL's CopyAttributeOutText for the text format.
func copyEscape(s string) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\v':
			b = append(b, '\\', 'v')
		default:
			b = append(b, c)
		}
	}
	return b
}
