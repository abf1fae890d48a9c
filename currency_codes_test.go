package paybatch

import (
	"slices"
	"testing"
)

// TestCurrencyCodesAreWhatParseCurrencyAccepts: CurrencyCodes is exactly the
// set of three-letter codes ParseCurrency accepts as written, in order.
func TestCurrencyCodesAreWhatParseCurrencyAccepts(t *testing.T) {
	var want []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				code := string([]rune{a, b, c})
				if cur, err := ParseCurrency(code); err == nil && cur.Code() == code {
					want = append(want, code)
				}
			}
		}
	}
	if got := CurrencyCodes(); !slices.Equal(got, want) {
		t.Fatalf("CurrencyCodes() = %d codes %v…, want the %d codes ParseCurrency accepts", len(got), got[:min(5, len(got))], len(want))
	}
	if len(want) < 150 {
		t.Fatalf("only %d codes", len(want))
	}
}
