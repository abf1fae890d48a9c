package paybatch

import (
	"strings"
	"testing"
)

func TestMaskCardNumbers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"declined", "declined"},
		{"4111111111111111", "411111******1111"},
		{"card 4111 1111 1111 1111 declined", "card 411111******1111 declined"},
		{"4111-1111-1111-1111", "411111******1111"},
		{"378282246310005", "378282*****0005"},           // 15-digit Amex
		{"6011000990139424123", "601100*********4123"},   // 19 digits
		{"123456789012", "123456789012"},                 // 12 digits: an id, not a card
		{"12345678901234567890", "12345678901234567890"}, // 20 digits: not a card
		{"ORD-2026-11-22", "ORD-2026-11-22"},
		{"amount 1234.50 ref 99", "amount 1234.50 ref 99"},
		{"a 4111111111111111, b 5500005555555559.", "a 411111******1111, b 550000******5559."},
		{"4111  1111 1111 1111", "4111  1111 1111 1111"}, // double space breaks the run: 4 + 12 digits
	} {
		if got := MaskCardNumbers(tc.in); got != tc.want {
			t.Errorf("MaskCardNumbers(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzMaskCardNumbers: masking never leaves a 13–19 digit run (with single
// separators) intact and never changes text without such a run.
func FuzzMaskCardNumbers(f *testing.F) {
	for _, s := range []string{"4111 1111 1111 1111", "x4111111111111111y", "1-2-3-4-5-6-7-8-9-0-1-2-3", "12345678901234567890"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := MaskCardNumbers(s)
		if !hasLongDigitRun(s) && got != s {
			t.Fatalf("changed %q to %q", s, got)
		}
		digits := 0
		for i := 0; i < len(got); i++ {
			c := got[i]
			switch {
			case isDigit(c):
				digits++
			case (c == ' ' || c == '-') && i > 0 && isDigit(got[i-1]) && i+1 < len(got) && isDigit(got[i+1]):
			default:
				if digits >= 13 && digits <= 19 {
					t.Fatalf("%q → %q keeps a %d-digit run", s, got, digits)
				}
				digits = 0
			}
		}
		if digits >= 13 && digits <= 19 {
			t.Fatalf("%q → %q keeps a %d-digit run", s, got, digits)
		}
		if strings.Count(got, "*") == 0 && got != s {
			t.Fatalf("changed without masking: %q → %q", s, got)
		}
	})
}
