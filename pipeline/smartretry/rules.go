package smartretry

import (
	"fmt"
	"time"

	"github.com/paybatch/paybatch"
)

// Limits are SmartRetry's documented rate limits per API key: 100 payment
// operations, 500 status queries and 1,000 requests of any kind per second
// (api/smartretry.md §5).
func Limits() paybatch.Limits {
	return paybatch.Limits{
		Submit:  paybatch.Limit{N: 100, Per: time.Second},
		Status:  paybatch.Limit{N: 500, Per: time.Second},
		Overall: paybatch.Limit{N: 1000, Per: time.Second},
	}
}

// maxMajor is the largest amount SmartRetry documents: 999999999 major units.
const maxMajor = 999_999_999

// Rules are SmartRetry's checks of a refund, capture or void read from a
// batch (paybatch.Rules). The zero value is ready to use.
type Rules struct{}

// Validate checks the terminal (6 letters or digits), the transaction and
// order references (8 letters or digits) and the maximum amount.
func (Rules) Validate(in paybatch.Instruction) []paybatch.FieldError {
	var errs []paybatch.FieldError
	if in.Terminal != "" && !ValidTerminal(in.Terminal) {
		errs = append(errs, paybatch.FieldError{Field: "terminal", Value: in.Terminal,
			Err: fmt.Errorf("%w: a terminal id is exactly 6 letters or digits (e.g. ABC123)", paybatch.ErrBadField)})
	}
	for _, ref := range []struct{ field, v string }{{"transaction_reference_id", in.TransactionRef}, {"order_reference_id", in.OrderRef}} {
		if ref.v != "" && !ValidID(ref.v) {
			errs = append(errs, paybatch.FieldError{Field: ref.field, Value: ref.v,
				Err: fmt.Errorf("%w: a SmartRetry %s is exactly 8 letters or digits (e.g. TX8A3F2C); copy it from the original transaction", paybatch.ErrBadField, ref.field)})
		}
	}
	if m := in.Amount; m.Minor > maxMajor*pow10(m.Currency.Exponent()) {
		errs = append(errs, paybatch.FieldError{Field: "amount",
			Err: fmt.Errorf("%w: %s %s is over the maximum of %d (the SmartRetry maximum)", paybatch.ErrBadAmount, m.String(), m.Currency.Code(), maxMajor)})
	}
	return errs
}

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}
