package readers

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

func isSpaceSep(r rune) bool { return r == ' ' || r == '\u00a0' || r == '\u202f' }

// parseAmountText parses an amount typed as text (a CSV field or a text
// spreadsheet cell). Without decimalComma the only accepted form is
// ParseMoney's plain "1234.56"; a ',' anywhere is refused because "1,234"
// could be one thousand or one point two three four. With decimalComma the
// decimal mark is ',' and '.', space or no-break space may group thousands,
// but only in groups of exactly three digits ("1.234,56", "1 234,5").
func parseAmountText(s string, cur paybatch.Currency, decimalComma bool) (paybatch.Money, error) {
	t := s
	if n := len(s); n == 0 || s[0] <= ' ' || s[n-1] <= ' ' || s[0] >= utf8.RuneSelf || s[n-1] >= utf8.RuneSelf {
		t = strings.TrimFunc(s, unicode.IsSpace) // every Unicode space, as ids (TrimID) and ledgers
	}
	if t == "" {
		return paybatch.Money{}, fmt.Errorf("%w: the amount is empty", paybatch.ErrMissingField)
	}
	if m, ok := fastMoney(t, cur); ok && (!decimalComma || !strings.Contains(t, ".")) {
		return m, nil
	}
	if !decimalComma {
		if strings.ContainsRune(t, ',') {
			return paybatch.Money{}, fmt.Errorf("%w: %q contains ','; write the amount without thousands separators (1234.56), or pass --decimal-comma if ',' is the decimal mark", paybatch.ErrBadAmount, s)
		}
		return paybatch.ParseMoney(t, cur)
	}
	sign := ""
	if t[0] == '+' || t[0] == '-' {
		sign, t = t[:1], t[1:]
	}
	intPart, frac, hasComma := strings.Cut(t, ",")
	if hasComma && strings.ContainsAny(frac, ",. \u00a0\u202f") {
		return paybatch.Money{}, fmt.Errorf("%w: %q: with --decimal-comma ',' is the decimal mark and may appear once, after any thousands separators", paybatch.ErrBadAmount, s)
	}
	digits, err := ungroup(intPart)
	if err != nil {
		return paybatch.Money{}, fmt.Errorf("%w: %q: %v", paybatch.ErrBadAmount, s, err)
	}
	plain := sign + digits
	if hasComma {
		plain += "." + frac
	}
	m, err := paybatch.ParseMoney(plain, cur)
	if err != nil {
		return paybatch.Money{}, fmt.Errorf("%w (read with --decimal-comma as %q)", err, plain)
	}
	return m, nil
}

// ungroup removes thousands separators ('.', space, no-break space) from
// the integer part of a decimal-comma amount, insisting on one kind of
// separator and groups of three.
func ungroup(s string) (string, error) {
	var sep rune
	var groups []string
	start := 0
	for i, r := range s {
		if r == '.' || isSpaceSep(r) {
			if sep != 0 && r != sep {
				return "", errors.New("mixes thousands separators")
			}
			sep = r
			groups = append(groups, s[start:i])
			start = i + len(string(r))
		}
	}
	if sep == 0 {
		return s, nil
	}
	groups = append(groups, s[start:])
	if len(groups[0]) < 1 || len(groups[0]) > 3 {
		return "", errors.New("thousands separators must group digits in threes")
	}
	for _, g := range groups[1:] {
		if len(g) != 3 {
			return "", errors.New("thousands separators must group digits in threes (a '.' before the ',' is a thousands separator with --decimal-comma)")
		}
	}
	return strings.Join(groups, ""), nil
}

// parseAmountNumber converts the text of a numeric spreadsheet cell — the
// XML value text, e.g. "49.99", "49.990000000000002" or "1.5E+3" — to Money
// without ever going through float64.
//
// The rule: the cell text is parsed as an exact decimal. If it has no more
// decimals than the currency allows, that is the amount. Otherwise it is
// rounded to 15 significant digits — the precision Excel stores for a typed
// number and shows at most; a writer that prints a binary double with all
// its round-trip digits (49.990000000000002, or 0.30000000000000004 from
// =0.1+0.2) produces 16-17 — and accepted only if that gives a decimal
// within the currency's exponent (49.99, 0.3). Anything still over-precise
// at 15 significant digits (49.995 for GBP, 49.9900000001) is something the
// user can see in the cell and is rejected, never rounded.
func parseAmountNumber(raw string, cur paybatch.Currency) (paybatch.Money, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(raw))
	if err != nil {
		return paybatch.Money{}, fmt.Errorf("%w: numeric cell %q is not a number", paybatch.ErrBadAmount, raw)
	}
	exp := int32(cur.Exponent())
	if !fitsExponent(d, exp) {
		r := round15(d)
		if !fitsExponent(r, exp) {
			return paybatch.Money{}, fmt.Errorf("%w: the cell holds %s, which has more than %d decimal places for %s; fix the amount, paybatch never rounds",
				paybatch.ErrBadAmount, r.String(), exp, cur.Code())
		}
		d = r
	}
	m, err := paybatch.FromDecimal(d, cur, d.String())
	if err != nil {
		return paybatch.Money{}, err
	}
	switch {
	case m.Minor < 0:
		return paybatch.Money{}, fmt.Errorf("%w: %q is negative; amounts must be positive", paybatch.ErrBadAmount, m.String())
	case m.Minor == 0:
		return paybatch.Money{}, fmt.Errorf("%w: %q is zero; amounts must be positive", paybatch.ErrBadAmount, m.String())
	}
	return m, nil
}

func fitsExponent(d decimal.Decimal, exp int32) bool {
	scaled := d.Shift(exp)
	return scaled.Equal(scaled.Truncate(0))
}

// round15 rounds d to 15 significant digits (half away from zero).
func round15(d decimal.Decimal) decimal.Decimal {
	if d.IsZero() {
		return d
	}
	c := d.Coefficient()
	n := int32(len(c.Abs(c).String()))
	return d.Round(15 - (n + d.Exponent()))
}

// fastMoney reads the common case — up to 15 digits, optionally '.' and no
// more decimals than the currency has — with integer arithmetic, exactly.
// Anything else (and zero) goes the general way, which also words the errors.
func fastMoney(s string, cur paybatch.Currency) (paybatch.Money, bool) {
	exp := cur.Exponent()
	var minor int64
	digits, decimals, dot := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			minor = minor*10 + int64(c-'0')
			digits++
			if dot {
				decimals++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return paybatch.Money{}, false
		}
	}
	if digits == 0 || digits > 15 || decimals > exp || minor == 0 {
		return paybatch.Money{}, false
	}
	if digits-decimals+exp > 16 { // the scaled value could pass 10^16 (and int64, for 4-decimal CLF)
		return paybatch.Money{}, false
	}
	for ; decimals < exp; decimals++ {
		minor *= 10
	}
	if minor > 1<<53 { // paybatch.ParseMoney's bound; let it word the error
		return paybatch.Money{}, false
	}
	return paybatch.Money{Currency: cur, Minor: minor}, true
}

// NumberText is the amount a numeric spreadsheet cell holds (its XML text,
// e.g. "49.990000000000002" or "1.5E+3"), as an exact plain decimal, by the
// rule every reader of paybatch applies (parseAmountNumber): the exact
// decimal when it fits cur's decimals, else its 15-significant-digit
// rounding when that fits (Excel's binary double of 49.99 is 49.99), else
// the exact decimal, which the caller refuses as over-precise. Signed and
// zero values are kept (ledgers have them). With no currency (cur zero) or
// text that is not a number, raw is returned as it is.
func NumberText(raw string, cur paybatch.Currency) string {
	d, err := decimal.NewFromString(strings.TrimSpace(raw))
	if err != nil {
		return raw
	}
	if cur.IsZero() {
		return d.String()
	}
	return numberDecimal(d, int32(cur.Exponent())).String()
}

// numberDecimal applies the 15-significant-digit rule to a numeric cell.
func numberDecimal(d decimal.Decimal, exp int32) decimal.Decimal {
	if !fitsExponent(d, exp) {
		if r := round15(d); fitsExponent(r, exp) {
			return r
		}
	}
	return d
}
