package paybatch

import (
	"errors"
	"testing"
)

// TestCurrencyTable checks paybatch's own ISO 4217 table where it matters:
// exponents other than 2, and codes it refuses (withdrawn, never ISO, no
// minor unit) that the go-money table it replaces accepted.
func TestCurrencyTable(t *testing.T) {
	for code, exp := range map[string]int{"USD": 2, "GBP": 2, "EUR": 2, "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0,
		"KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3, "CLF": 4, "UYW": 4, "UYI": 0, "VED": 2, "ZWG": 2} {
		c, err := ParseCurrency(code)
		if err != nil || c.Exponent() != exp {
			t.Errorf("%s: exponent %d, %v; want %d", code, c.Exponent(), err, exp)
		}
	}
	for _, code := range []string{"EEK", "HRK", "VEF", "BYR", "GGP", "JEP", "IMP", "XAU", "XDR", "XXX"} {
		if _, err := ParseCurrency(code); !errors.Is(err, ErrBadCurrency) {
			t.Errorf("%s accepted; want ErrBadCurrency", code)
		}
	}
	if len(minorUnits) < 160 {
		t.Errorf("table has %d currencies; ISO 4217 lists about 170 with a minor unit", len(minorUnits))
	}
}
