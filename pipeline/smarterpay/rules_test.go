package smarterpay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

func TestRules(t *testing.T) {
	// 23:30 UTC on 1 Jun 2027 is already 2 Jun in London (BST): "today" is
	// London's date, whatever the machine's zone.
	now := func() time.Time { return time.Date(2027, 6, 1, 23, 30, 0, 0, time.UTC) }
	ok := paybatch.Instruction{Kind: paybatch.KindDDPayment, MerchantTxID: "INV-1", Mandate: "M01SANDBOX000000001",
		Amount: paybatch.Money{Currency: paybatch.MustCurrency("GBP"), Minor: 2532}, CollectionDate: day("2027-06-02"),
		Description: "June", DefaultNarrative: "ACME"}
	for _, tc := range []struct {
		name  string
		edit  func(*paybatch.Instruction)
		field string
		is    error
		want  string
	}{
		{"acceptable", func(*paybatch.Instruction) {}, "", nil, ""},
		{"today in London is not past", func(in *paybatch.Instruction) { in.CollectionDate = day("2027-06-02") }, "", nil, ""},
		{"yesterday in London", func(in *paybatch.Instruction) { in.CollectionDate = day("2027-06-01") }, "collection_date", paybatch.ErrBadDate, "2027-06-01 is in the past (today is 2027-06-02); Bacs refuses past dates"},
		{"not GBP", func(in *paybatch.Instruction) { in.Amount.Currency = paybatch.MustCurrency("EUR") }, "currency", paybatch.ErrBadCurrency, "SmarterPay collects and pays in GBP only"},
		{"Bacs limit is allowed", func(in *paybatch.Instruction) { in.Amount.Minor = 2_000_000_000 }, "", nil, ""},
		{"over the Bacs limit", func(in *paybatch.Instruction) { in.Amount.Minor = 2_000_000_001 }, "amount", paybatch.ErrBadAmount, "20000000.01 GBP is over the maximum of 20000000 (the Bacs per-item limit)"},
		{"mandate id", func(in *paybatch.Instruction) { in.Mandate = "M01 741" }, "mandate", paybatch.ErrBadField, "a SmarterPay mandate id is letters"},
		{"bank account id", func(in *paybatch.Instruction) { in.BankAccount = strings.Repeat("B", 51) }, "bank_account", paybatch.ErrBadField, "at most 50 characters"},
		{"auddis alphabet", func(in *paybatch.Instruction) { in.Auddis = "abc123" }, "auddis", paybatch.ErrBadField, "uses only A-Z, 0-9, space and / - . &"},
		{"auddis length", func(in *paybatch.Instruction) { in.Auddis = strings.Repeat("A1", 10) }, "auddis", paybatch.ErrBadField, "at most 18 characters"},
		{"narrative", func(in *paybatch.Instruction) { in.DefaultNarrative = strings.Repeat("n", 19) }, "default_narrative", paybatch.ErrBadField, "default_narrative is 19 characters; the limit is 18"},
		{"description", func(in *paybatch.Instruction) { in.Description = strings.Repeat("é", 101) }, "description", paybatch.ErrBadField, "description is 101 characters; the limit is 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			errs := Rules{Now: now}.Validate(in)
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
	if l := Limits(); l.Overall != (paybatch.Limit{N: 1000, Per: time.Minute}) || !l.Submit.IsZero() || !l.Status.IsZero() {
		t.Fatalf("Limits() = %+v; SmarterPay documents 1000 requests per 60 s", l)
	}
}
