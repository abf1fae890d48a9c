package smarterpay

import (
	"fmt"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
)

// Limits are SmarterPay's documented rate limit per bearer token: 1,000
// requests per 60 seconds, of any kind (api/smarterpay.md §3).
func Limits() paybatch.Limits {
	return paybatch.Limits{Overall: paybatch.Limit{N: 1000, Per: time.Minute}}
}

// CheckAuddis applies the documented AUDDIS reference rules: A-Z 0-9 / - . &
// and space; 6 to 18 characters; first character alphanumeric; not all the
// same character; not starting with DDIC.
func CheckAuddis(a string) error {
	if n := len(a); n < 6 || n > 18 {
		return fmt.Errorf("auddis %q must be 6 to 18 characters", a)
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		alnum := c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("auddis %q must start with A-Z or 0-9", a)
		}
		if !alnum && !strings.ContainsRune("/-.& ", rune(c)) {
			return fmt.Errorf("auddis %q may hold only A-Z 0-9 / - . & and space", a)
		}
	}
	if strings.Count(a, a[:1]) == len(a) {
		return fmt.Errorf("auddis %q must not be one repeated character", a)
	}
	if strings.HasPrefix(a, "DDIC") {
		return fmt.Errorf("auddis %q must not start with DDIC", a)
	}
	return nil
}
