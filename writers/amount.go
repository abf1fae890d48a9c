package writers

import (
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// maxExactMinor bounds the amounts written as numeric cells through a binary
// double. Every decimal with at most 15 significant digits survives
// decimal → nearest float64 → shortest decimal unchanged (IEEE 754 binary64
// has DBL_DIG = 15: two distinct 15-digit decimals never share a double, so
// the shortest round-trip string is the original digits). An amount with
// |minor| < 10^15 has at most 15 significant digits whatever its exponent,
// so excelize's strconv.FormatFloat(f, 'f', -1, 64) writes exactly
// Money.String() (minus trailing zeros) into the sheet XML. Larger amounts —
// beyond 10^13 dollars, far past any payment — are written as exact text,
// because a spreadsheet keeps only 15 significant digits of a number anyway.
const maxExactMinor = int64(1_000_000_000_000_000) // 10^15

// amountValue is the excelize cell value for m and whether it is numeric.
// Zero-exponent currencies (JPY) are written as integers, which excelize
// writes verbatim with strconv.FormatInt; other currencies as the float64
// nearest to Money.String(), exact by the argument above.
func amountValue(m paybatch.Money) (any, bool) {
	if m.Currency.Exponent() == 0 {
		return m.Minor, true
	}
	if m.Minor >= maxExactMinor || m.Minor <= -maxExactMinor {
		return m.String(), false
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
