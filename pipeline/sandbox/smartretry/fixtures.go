package smartretry

import (
	"errors"
	"fmt"

	"github.com/paybatch/paybatch"
	api "github.com/paybatch/paybatch/pipeline/smartretry"
)

// Default test credentials of the sandbox.
const (
	TestAPIKey    = "sr_test_key"
	TestTerminal  = "ABC123"
	TestTerminal2 = "TERM01"
)

// DefaultKeys returns the sandbox's default API keys and the terminals each
// may use.
func DefaultKeys() map[string][]string {
	return map[string][]string{TestAPIKey: {TestTerminal, TestTerminal2}}
}

// TransactionFixture is a transaction the sandbox starts with: a completed
// sale or capture to refund, or a preauth to capture or void. Amount is the
// exact major-unit string ("120.00", "15000", "12.500").
type TransactionFixture struct {
	TransactionID         string `json:"transaction_id"`
	OrderID               string `json:"order_id"`
	Terminal              string `json:"terminal"`
	Type                  string `json:"type"` // sale | preauth | capture
	Amount                string `json:"amount"`
	Currency              string `json:"currency"`
	Status                string `json:"status"` // APPROVED (default), DECLINED, ERROR, CANCELLED
	MerchantTransactionID string `json:"merchant_transaction_id,omitempty"`
}

// money parses the fixture's amount exactly.
func (f TransactionFixture) money() (paybatch.Money, error) {
	cur, err := paybatch.ParseCurrency(f.Currency)
	if err != nil {
		return paybatch.Money{}, err
	}
	return api.ParseAmount(f.Amount, cur)
}

// Validate checks one fixture.
func (f TransactionFixture) Validate() error {
	if !api.ValidID(f.TransactionID) {
		return fmt.Errorf("transaction_id %q: want exactly 8 letters or digits", f.TransactionID)
	}
	if !api.ValidID(f.OrderID) {
		return fmt.Errorf("transaction %s: order_id %q: want exactly 8 letters or digits", f.TransactionID, f.OrderID)
	}
	if !api.ValidTerminal(f.Terminal) {
		return fmt.Errorf("transaction %s: terminal %q: want exactly 6 letters or digits", f.TransactionID, f.Terminal)
	}
	switch f.Type {
	case api.TypeSale, api.TypePreauth, api.TypeCapture:
	default:
		return fmt.Errorf("transaction %s: type %q: want sale, preauth or capture", f.TransactionID, f.Type)
	}
	switch f.Status {
	case "", api.StatusApproved, api.StatusDeclined, api.StatusError, api.StatusCancelled:
	default:
		return fmt.Errorf("transaction %s: status %q: want APPROVED, DECLINED, ERROR or CANCELLED", f.TransactionID, f.Status)
	}
	if _, err := f.money(); err != nil {
		return fmt.Errorf("transaction %s: amount %q %s: %w", f.TransactionID, f.Amount, f.Currency, err)
	}
	if len(f.MerchantTransactionID) > 100 {
		return fmt.Errorf("transaction %s: merchant_transaction_id longer than 100 characters", f.TransactionID)
	}
	return nil
}

// ValidateFixtures checks every fixture and that transaction ids are unique.
func ValidateFixtures(fx []TransactionFixture) error {
	seen := make(map[string]bool, len(fx))
	var errs []error
	for i, f := range fx {
		if err := f.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("smartretry transaction #%d: %w", i+1, err))
			continue
		}
		if seen[f.TransactionID] {
			errs = append(errs, fmt.Errorf("smartretry transaction #%d: duplicate transaction_id %s", i+1, f.TransactionID))
		}
		seen[f.TransactionID] = true
	}
	return errors.Join(errs...)
}

// DefaultFixtures is the sandbox's default set: on each test terminal and in
// each of USD, GBP, EUR, JPY and KWD, three approved sales (ids TXS…, orders
// ORS…) and two approved preauths (TXP…, ORP…).
func DefaultFixtures() []TransactionFixture {
	type amt struct{ cur, sale1, sale2, sale3, pre1, pre2 string }
	amounts := []amt{
		{"USD", "120.00", "49.99", "1000.00", "200.00", "75.00"},
		{"GBP", "80.00", "15.25", "640.00", "150.00", "60.00"},
		{"EUR", "95.50", "19.90", "720.00", "180.00", "45.00"},
		{"JPY", "15000", "2980", "120000", "30000", "8000"},
		{"KWD", "12.500", "3.750", "250.000", "40.000", "9.500"},
	}
	var out []TransactionFixture
	n := 0
	for _, term := range []string{TestTerminal, TestTerminal2} {
		for _, a := range amounts {
			for i, v := range []string{a.sale1, a.sale2, a.sale3} {
				n++
				out = append(out, TransactionFixture{
					TransactionID: fmt.Sprintf("TXS%05d", n), OrderID: fmt.Sprintf("ORS%05d", n),
					Terminal: term, Type: api.TypeSale, Amount: v, Currency: a.cur, Status: api.StatusApproved,
					MerchantTransactionID: fmt.Sprintf("sale-%s-%s-%d", term, a.cur, i+1),
				})
			}
		}
	}
	n = 0
	for _, term := range []string{TestTerminal, TestTerminal2} {
		for _, a := range amounts {
			for i, v := range []string{a.pre1, a.pre2} {
				n++
				out = append(out, TransactionFixture{
					TransactionID: fmt.Sprintf("TXP%05d", n), OrderID: fmt.Sprintf("ORP%05d", n),
					Terminal: term, Type: api.TypePreauth, Amount: v, Currency: a.cur, Status: api.StatusApproved,
					MerchantTransactionID: fmt.Sprintf("preauth-%s-%s-%d", term, a.cur, i+1),
				})
			}
		}
	}
	return out
}
