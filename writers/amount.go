package writers

import (
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// maxExactMinor bounds the amounts written as numeric cells: at most 14
// significant digits (|minor| < 10^14, i.e. under 1 trillion USD, 100
// billion KWD, 100 trillion JPY). Larger amounts are written as exact text.
//
// Why a number through float64 is still exact: excelize's StreamWriter has
// no verbatim path for a decimal number (ints are written with FormatInt,
// floats with strconv.FormatFloat(f, 'f', -1, 64), strings become text). Any
// decimal with at most 15 significant digits survives decimal → nearest
// float64 → shortest round-trip decimal unchanged: binary64 has DBL_DIG = 15,
// so two distinct 15-digit decimals never round to the same double, and the
// shortest string that reads back as that double therefore has the
// original's digits (a shorter or different one would be a second ≤15-digit
// decimal mapping to the same double). So the sheet XML holds exactly
// Money.String() (trailing zeros dropped); TestAmountFloatPathIsExact checks
// it on the boundaries and 300k random amounts.
//
// Why 14 and not 15 digits: spreadsheets keep 15 significant digits, but
// LibreOffice's display formatting rounds a 15-digit fractional amount
// (9,999,999,999,999.99 is shown as 10,000,000,000,000.00 under "#,##0.00";
// measured with LibreOffice 7.4). Showing a rounded amount would be wrong,
// so beyond 14 digits the exact text is written instead.
const maxExactMinor = int64(100_000_000_000_000) // 10^14

// amountValue is the excelize cell value for m and whether it is numeric.
// Zero-exponent currencies (JPY) are written as integers, which excelize
// writes verbatim with strconv.FormatInt; other currencies as the float64
// nearest to Money.String(), exact by the argument above.
func amountValue(m paybatch.Money) (any, bool) {
	if m.Minor >= maxExactMinor || m.Minor <= -maxExactMinor {
		return m.String(), false
	}
	if m.Currency.Exponent() == 0 {
		return m.Minor, true
	}
	f, err := strconv.ParseFloat(m.String(), 64)
	if err != nil { // cannot happen for Money.String(); fall back to exact text
		return m.String(), false
	}
	return f, true
}

// amountFormat is the number format showing exactly the currency's decimals:
// "#,##0" (JPY), "#,##0.00" (USD), "#,##0.000" (KWD).
func amountFormat(exp int) string {
	if exp <= 0 {
		return "#,##0"
	}
	return "#,##0." + strings.Repeat("0", exp)
}
