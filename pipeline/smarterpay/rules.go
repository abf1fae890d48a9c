package smarterpay

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// Limits of the fields SmarterPay documents (api/smarterpay.md §5–§7).
const (
	maxNarrative   = 18 // default_narrative, shown on the payer's statement
	maxDescription = 100
	maxAuddis      = 18 // AUDDIS reference: A-Z 0-9 / - . & and space
	// maxAccountID bounds mandate and bank account ids ("prefix + auto
	// number"; SmarterPay documents no length).
	maxAccountID = 50
	// maxPounds is the Bacs scheme's per-item limit, £20,000,000.00:
	// SmarterPay documents no maximum, and one item over it makes Bacs
	// refuse the whole submission.
	maxPounds = 20_000_000
)

var poundSterling = paybatch.MustCurrency("GBP")

// Rules are SmarterPay's checks of a Direct Debit payment or credit read
// from a batch (paybatch.Rules).
type Rules struct {
	// Now is the clock that decides Bacs "today" (London); nil → time.Now.
	Now func() time.Time
}

// Validate checks: GBP only, at most the Bacs per-item limit, a date not
// before today in London, mandate and bank account id formats, the AUDDIS
// reference, and the lengths of the description and narrative.
func (r Rules) Validate(in paybatch.Instruction) []paybatch.FieldError {
	var errs []paybatch.FieldError
	bad := func(field, value string, err error) {
		errs = append(errs, paybatch.FieldError{Field: field, Value: value, Err: err})
	}
	checkAccountID := func(field, s string) {
		if s == "" {
			return
		}
		if len(s) > maxAccountID || strings.IndexFunc(s, func(c rune) bool {
			return !(c < utf8.RuneSelf && (c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c)))
		}) >= 0 {
			bad(field, s, fmt.Errorf("%w: a SmarterPay %s id is letters, digits, '-' or '_' (e.g. M01741EJ519Y51P3XGL), at most %d characters", paybatch.ErrBadField, field, maxAccountID))
		}
	}
	checkAccountID("mandate", in.Mandate)
	if err := checkAuddisField(in.Auddis); err != nil {
		bad("auddis", in.Auddis, err)
	}
	checkAccountID("bank_account", in.BankAccount)
	switch m := in.Amount; {
	case m.Currency.IsZero():
	case m.Currency != poundSterling:
		bad("currency", "", fmt.Errorf("%w: SmarterPay collects and pays in %s only", paybatch.ErrBadCurrency, poundSterling))
	case m.Minor > maxPounds*100:
		bad("amount", "", fmt.Errorf("%w: %s %s is over the maximum of %d (the Bacs per-item limit)", paybatch.ErrBadAmount, m.String(), m.Currency.Code(), maxPounds))
	}
	if d := in.CollectionDate; !d.IsZero() {
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		if today := Today(now()); d.Before(today) {
			bad("collection_date", "", fmt.Errorf("%w: %s is in the past (today is %s); Bacs refuses past dates", paybatch.ErrBadDate, d.Format(time.DateOnly), today.Format(time.DateOnly)))
		}
	}
	for _, f := range []struct {
		field, v string
		max      int
	}{{"description", in.Description, maxDescription}, {"default_narrative", in.DefaultNarrative, maxNarrative}} {
		if n := utf8.RuneCountInString(f.v); n > f.max {
			bad(f.field, f.v, fmt.Errorf("%w: %s is %d characters; the limit is %d", paybatch.ErrBadField, f.field, n, f.max))
		}
	}
	return errs
}

// checkAuddisField is the batch-side AUDDIS check: the length and alphabet
// a reference may have. CheckAuddis adds the rules SmarterPay applies when a
// mandate is created (6 characters at least, no DDIC prefix …).
func checkAuddisField(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxAuddis {
		return fmt.Errorf("%w: an AUDDIS reference is at most %d characters", paybatch.ErrBadField, maxAuddis)
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/-.& ", c)) {
			return fmt.Errorf("%w: an AUDDIS reference uses only A-Z, 0-9, space and / - . &", paybatch.ErrBadField)
		}
	}
	return nil
}
