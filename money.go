package paybatch

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 alphabetic code together with its minor-unit
// exponent (2 for USD, 0 for JPY, 3 for KWD), from paybatch's ISO 4217
// table (currency_table.go).
type Currency struct {
	code string
	exp  int32
}

// ParseCurrency returns the currency for an ISO 4217 code, case-insensitively.
func ParseCurrency(code string) (Currency, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if len(c) != 3 {
		return Currency{}, fmt.Errorf("%w: %q is not a 3-letter ISO 4217 code", ErrBadCurrency, code)
	}
	exp, ok := minorUnits[c]
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q is not an active ISO 4217 currency with a minor unit", ErrBadCurrency, code)
	}
	return Currency{code: c, exp: exp}, nil
}

// CurrencyCodes lists every code ParseCurrency accepts, in order (for a
// table of them: finding them by trying every three letters costs 17,576
// ParseCurrency calls, nearly all building an error).
func CurrencyCodes() []string {
	codes := make([]string, 0, len(minorUnits))
	for c := range minorUnits {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

// MustCurrency is ParseCurrency for constants in tests and fixtures.
func MustCurrency(code string) Currency {
	c, err := ParseCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// Code is the ISO 4217 alphabetic code, e.g. "USD".
func (c Currency) Code() string { return c.code }

// Exponent is the number of decimal places of the minor unit.
func (c Currency) Exponent() int { return int(c.exp) }

// IsZero reports whether c is the zero Currency (no code).
func (c Currency) IsZero() bool { return c.code == "" }

func (c Currency) String() string { return c.code }

// Money is an exact amount: an integer count of the currency's minor units.
// It is never a binary float anywhere in paybatch.
type Money struct {
	Currency Currency
	// Minor is the amount in minor units (cents, pence; yen for JPY; fils for KWD).
	Minor int64
}

// maxMinor bounds parsed amounts so that sums of many rows stay far from int64 overflow.
const maxMinor = int64(1) << 53

// ParseMoney parses a plain decimal string such as "1234.5" in currency cur.
// It accepts an optional leading '+', digits and at most one '.', and rejects
// anything else: signs, exponents, thousands separators, more decimals than
// the currency allows (never rounded), zero and negative amounts are reported
// with a reason that wraps ErrBadAmount. Callers that accept other notations
// (decimal commas, numeric spreadsheet cells) normalise to this form first.
func ParseMoney(s string, cur Currency) (Money, error) {
	m, err := ParseSignedMoney(s, cur)
	if err != nil {
		return Money{}, err
	}
	if m.Minor < 0 {
		return Money{}, fmt.Errorf("%w: %q is negative; amounts must be positive", ErrBadAmount, s)
	}
	if m.Minor == 0 {
		return Money{}, fmt.Errorf("%w: %q is zero; amounts must be positive", ErrBadAmount, s)
	}
	return m, nil
}

// ParseSignedMoney is ParseMoney that also allows zero and a leading '-'
// (ledgers carry negative lines; instructions never do).
func ParseSignedMoney(s string, cur Currency) (Money, error) {
	if cur.IsZero() {
		return Money{}, fmt.Errorf("%w: no currency for amount %q", ErrBadCurrency, s)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return Money{}, fmt.Errorf("%w: empty amount", ErrBadAmount)
	}
	body := t
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	digits, dots := 0, 0
	for _, r := range body {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return Money{}, fmt.Errorf("%w: %q is not a plain decimal number (use digits and one '.', no separators or exponent)", ErrBadAmount, s)
		}
	}
	if digits == 0 || dots > 1 {
		return Money{}, fmt.Errorf("%w: %q is not a plain decimal number", ErrBadAmount, s)
	}
	d, err := decimal.NewFromString(t)
	if err != nil {
		return Money{}, fmt.Errorf("%w: %q: %v", ErrBadAmount, s, err)
	}
	return FromDecimal(d, cur, s)
}

// FromDecimal converts an exact decimal to Money, refusing excess precision.
// orig is the text shown in errors.
func FromDecimal(d decimal.Decimal, cur Currency, orig string) (Money, error) {
	scaled := d.Shift(cur.exp)
	if !scaled.Equal(scaled.Truncate(0)) {
		return Money{}, fmt.Errorf("%w: %q has more than %d decimal places for %s; fix the amount, paybatch never rounds",
			ErrBadAmount, orig, cur.exp, cur.code)
	}
	bi := scaled.BigInt()
	if !bi.IsInt64() || bi.CmpAbs(big.NewInt(maxMinor)) > 0 {
		return Money{}, fmt.Errorf("%w: %q is too large", ErrBadAmount, orig)
	}
	return Money{Currency: cur, Minor: bi.Int64()}, nil
}

// Decimal returns the amount in major units as an exact decimal.
func (m Money) Decimal() decimal.Decimal { return decimal.New(m.Minor, -m.Currency.exp) }

// String formats the amount in major units with exactly the currency's
// decimals and no currency code: "1234.50", "1000", "1.000".
func (m Money) String() string { return m.Decimal().StringFixed(m.Currency.exp) }

// Add returns m+o; both must be in the same currency.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("%w: cannot add %s to %s", ErrCurrencyMismatch, o.Currency, m.Currency)
	}
	s := m.Minor + o.Minor
	if (s > m.Minor) != (o.Minor > 0) {
		return Money{}, errors.New("paybatch: money overflow")
	}
	return Money{Currency: m.Currency, Minor: s}, nil
}

// Totals accumulates exact sums per currency; it never sums across currencies.
type Totals map[string]Money

// Add adds m to the running total for its currency.
func (t Totals) Add(m Money) error {
	cur, ok := t[m.Currency.code]
	if !ok {
		t[m.Currency.code] = m
		return nil
	}
	s, err := cur.Add(m)
	if err != nil {
		return err
	}
	t[m.Currency.code] = s
	return nil
}

// Strings renders totals as currency → major-unit string, the JSON shape
// paybatch uses everywhere ({"USD":"123.45"}).
func (t Totals) Strings() map[string]string {
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v.String()
	}
	return out
}

// String renders totals sorted by currency: "GBP 10.00  USD 160.52", or "-"
// when empty.
func (t Totals) String() string {
	if len(t) == 0 {
		return "-"
	}
	codes := make([]string, 0, len(t))
	for c := range t {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = c + " " + t[c].String()
	}
	return strings.Join(parts, "  ")
}
