package readers

import (
	"errors"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

func TestAmounts(t *testing.T) {
	usd, jpy, kwd := paybatch.MustCurrency("USD"), paybatch.MustCurrency("JPY"), paybatch.MustCurrency("KWD")
	tests := []struct {
		in      string
		cur     paybatch.Currency
		comma   bool
		numeric bool // a numeric XLSX cell's XML text
		want    string
		err     error
	}{
		{in: "49.99", cur: usd, want: "49.99"},
		{in: " 7 ", cur: usd, want: "7.00"},
		{in: "+7.5", cur: usd, want: "7.50"},
		{in: "0.001", cur: kwd, want: "0.001"},
		{in: "1000", cur: jpy, want: "1000"},
		{in: "1000.0", cur: jpy, want: "1000"},
		{in: "1000.5", cur: jpy, err: paybatch.ErrBadAmount},
		{in: "10.555", cur: usd, err: paybatch.ErrBadAmount},
		{in: "0", cur: usd, err: paybatch.ErrBadAmount},
		{in: "0.00", cur: usd, err: paybatch.ErrBadAmount},
		{in: "-1", cur: usd, err: paybatch.ErrBadAmount},
		{in: "1e3", cur: usd, err: paybatch.ErrBadAmount},
		{in: "$5", cur: usd, err: paybatch.ErrBadAmount},
		{in: "1,234.56", cur: usd, err: paybatch.ErrBadAmount},
		{in: "12,5", cur: usd, err: paybatch.ErrBadAmount},
		{in: "", cur: usd, err: paybatch.ErrMissingField},
		{in: "1.234,56", cur: usd, comma: true, want: "1234.56"},
		{in: "1 234 567,8", cur: usd, comma: true, want: "1234567.80"},
		{in: "1\u00a0234,5", cur: usd, comma: true, want: "1234.50"},
		{in: "12,5", cur: usd, comma: true, want: "12.50"},
		{in: "1234", cur: usd, comma: true, want: "1234.00"},
		{in: "1.5", cur: usd, comma: true, err: paybatch.ErrBadAmount},         // '.' groups thousands here
		{in: "1.23,4", cur: usd, comma: true, err: paybatch.ErrBadAmount},      // group of two
		{in: "1.234 567,8", cur: usd, comma: true, err: paybatch.ErrBadAmount}, // mixed separators
		{in: "1,2,3", cur: usd, comma: true, err: paybatch.ErrBadAmount},
		{in: "49.99", cur: usd, numeric: true, want: "49.99"},
		{in: "49.990000000000002", cur: usd, numeric: true, want: "49.99"},
		{in: "0.30000000000000004", cur: usd, numeric: true, want: "0.30"},
		{in: "1234567.88999999989755452", cur: usd, numeric: true, want: "1234567.89"},
		{in: "1.5E+3", cur: usd, numeric: true, want: "1500.00"},
		{in: "1000", cur: jpy, numeric: true, want: "1000"},
		{in: "49.995", cur: usd, numeric: true, err: paybatch.ErrBadAmount},
		{in: "49.9900000001", cur: usd, numeric: true, err: paybatch.ErrBadAmount},
		{in: "0.1", cur: jpy, numeric: true, err: paybatch.ErrBadAmount},
		{in: "-5", cur: usd, numeric: true, err: paybatch.ErrBadAmount},
		{in: "0", cur: usd, numeric: true, err: paybatch.ErrBadAmount},
		{in: "abc", cur: usd, numeric: true, err: paybatch.ErrBadAmount},
	}
	for _, tt := range tests {
		var m paybatch.Money
		var err error
		if tt.numeric {
			m, err = parseAmountNumber(tt.in, tt.cur)
		} else {
			m, err = parseAmountText(tt.in, tt.cur, tt.comma)
		}
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%q (comma=%v numeric=%v): got %v, %v; want %v", tt.in, tt.comma, tt.numeric, m, err, tt.err)
			}
			continue
		}
		if err != nil || m.String() != tt.want || m.Currency != tt.cur {
			t.Errorf("%q (comma=%v numeric=%v): got %v %v, %v; want %s", tt.in, tt.comma, tt.numeric, m, m.Currency, err, tt.want)
		}
	}
}

func TestDates(t *testing.T) {
	d := func(y, m, day int) time.Time { return time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC) }
	text := []struct {
		in   string
		want time.Time // zero: must be an error
	}{
		{"2027-01-15", d(2027, 1, 15)},
		{"2027/01/15", d(2027, 1, 15)},
		{"2027-01-15T00:00:00", d(2027, 1, 15)},
		{"2027-01-15 00:00:00", d(2027, 1, 15)},
		{"15/01/2027", d(2027, 1, 15)},
		{"5/1/2027", d(2027, 1, 5)},
		{"05-01-2027", d(2027, 1, 5)},
		{"05.01.2027", d(2027, 1, 5)},
		{"5 Jan 2027", d(2027, 1, 5)},
		{"5 January 2027", d(2027, 1, 5)},
		{"12/25/2027", time.Time{}}, // US order
		{"01/12/27", time.Time{}},   // two-digit year
		{"29/02/2027", time.Time{}}, // no such day
		{"2027-13-01", time.Time{}},
		{"2027-01-15T10:30:00", time.Time{}}, // a time of day
		{"tomorrow", time.Time{}},
		{"2027.01.15", time.Time{}},
	}
	for _, tt := range text {
		got, err := parseDateText(tt.in)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("parseDateText(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseDateText(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	serials := []struct {
		in   string
		is04 bool
		want time.Time
	}{
		{"1", false, d(1900, 1, 1)},
		{"59", false, d(1900, 2, 28)},
		{"60", false, time.Time{}}, // Lotus's 1900-02-29
		{"61", false, d(1900, 3, 1)},
		{"46402", false, d(2027, 1, 15)},
		{"44940", true, d(2027, 1, 15)},
		{"0", true, d(1904, 1, 1)},
		{"0", false, time.Time{}},
		{"46402.5", false, time.Time{}},
		{"-1", false, time.Time{}},
		{"4.6402E+4", false, d(2027, 1, 15)},
	}
	for _, tt := range serials {
		got, err := dateFromSerial(tt.in, tt.is04)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("dateFromSerial(%q, %v) = %v, want an error", tt.in, tt.is04, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("dateFromSerial(%q, %v) = %v, %v; want %v", tt.in, tt.is04, got, err, tt.want)
		}
	}
}

func TestFastMoneyBounds(t *testing.T) {
	for _, code := range []string{"USD", "JPY", "KWD", "CLF"} {
		cur, err := paybatch.ParseCurrency(code)
		if err != nil {
			continue
		}
		for _, s := range []string{"999999999999999", "99999999999999.9", "9007199254740993"} {
			fast, ok := fastMoney(s, cur)
			slow, serr := paybatch.ParseMoney(s, cur)
			if ok && (serr != nil || fast != slow) {
				t.Errorf("%s %s: fast path %v, ParseMoney %v %v", s, code, fast, slow, serr)
			}
		}
	}
}
