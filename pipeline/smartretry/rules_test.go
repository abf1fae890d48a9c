package smartretry_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

func TestRules(t *testing.T) {
	usd := paybatch.MustCurrency("USD")
	ok := paybatch.Instruction{Kind: paybatch.KindRefund, MerchantTxID: "r-1", Terminal: "ABC123",
		TransactionRef: "TX8A3F2C", OrderRef: "OR7B9E1D", Amount: paybatch.Money{Currency: usd, Minor: 2500}}
	for _, tc := range []struct {
		name  string
		edit  func(*paybatch.Instruction)
		field string
		is    error
		want  string
	}{
		{"acceptable", func(*paybatch.Instruction) {}, "", nil, ""},
		{"void without amount", func(in *paybatch.Instruction) { in.Kind, in.Amount = paybatch.KindVoid, paybatch.Money{} }, "", nil, ""},
		{"the maximum itself", func(in *paybatch.Instruction) { in.Amount.Minor = 999_999_999_00 }, "", nil, ""},
		{"over the maximum", func(in *paybatch.Instruction) { in.Amount.Minor = 999_999_999_01 }, "amount", paybatch.ErrBadAmount, "999999999.01 USD is over the maximum of 999999999 (the SmartRetry maximum)"},
		{"over the maximum, zero-decimal", func(in *paybatch.Instruction) {
			in.Amount = paybatch.Money{Currency: paybatch.MustCurrency("JPY"), Minor: 1_000_000_000}
		}, "amount", paybatch.ErrBadAmount, "over the maximum"},
		{"terminal", func(in *paybatch.Instruction) { in.Terminal = "ABC12" }, "terminal", paybatch.ErrBadField, "a terminal id is exactly 6 letters or digits"},
		{"transaction reference", func(in *paybatch.Instruction) { in.TransactionRef = "TX-8A3F2" }, "transaction_reference_id", paybatch.ErrBadField, "a SmartRetry transaction_reference_id is exactly 8 letters or digits"},
		{"order reference", func(in *paybatch.Instruction) { in.OrderRef = "OR7B9E1DX" }, "order_reference_id", paybatch.ErrBadField, "a SmartRetry order_reference_id is exactly 8"},
		{"empty fields are the reader's", func(in *paybatch.Instruction) { in.Terminal, in.OrderRef = "", "" }, "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			errs := smartretry.Rules{}.Validate(in)
			if tc.field == "" {
				if len(errs) != 0 {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field || !errors.Is(errs[0], tc.is) || !strings.Contains(errs[0].Err.Error(), tc.want) {
				t.Fatalf("got %v; want one %s error %q", errs, tc.field, tc.want)
			}
		})
	}
}

func TestLimitsAreDocumented(t *testing.T) {
	want := paybatch.Limits{Submit: paybatch.Limit{N: 100, Per: time.Second}, Status: paybatch.Limit{N: 500, Per: time.Second},
		Overall: paybatch.Limit{N: 1000, Per: time.Second}}
	if got := smartretry.Limits(); got != want {
		t.Fatalf("Limits() = %+v, want %+v", got, want)
	}
}
