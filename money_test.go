package paybatch_test

import (
	"errors"
	"testing"

	"github.com/paybatch/paybatch"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in, cur string
		want    string // String() of the result; "" means an error is expected
		minor   int64
		errHas  error
	}{
		{in: "1234.5", cur: "USD", want: "1234.50", minor: 123450},
		{in: "49.99", cur: "USD", want: "49.99", minor: 4999},
		{in: "0.01", cur: "USD", want: "0.01", minor: 1},
		{in: " 25 ", cur: "GBP", want: "25.00", minor: 2500},
		{in: "+7.1", cur: "EUR", want: "7.10", minor: 710},
		{in: "1000", cur: "JPY", want: "1000", minor: 1000},
		{in: "1000.000", cur: "JPY", want: "1000", minor: 1000},
		{in: "1.000", cur: "KWD", want: "1.000", minor: 1000},
		{in: "1.5", cur: "kwd", want: "1.500", minor: 1500},
		{in: "10.005", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "500.5", cur: "JPY", errHas: paybatch.ErrBadAmount},
		{in: "1.0005", cur: "KWD", errHas: paybatch.ErrBadAmount},
		{in: "abc", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "-1", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "0", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "0.00", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "1e3", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "1,234.50", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "1.2.3", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: ".", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "NaN", cur: "USD", errHas: paybatch.ErrBadAmount},
		{in: "99999999999999999999", cur: "USD", errHas: paybatch.ErrBadAmount},
	}
	for _, tt := range tests {
		t.Run(tt.cur+"/"+tt.in, func(t *testing.T) {
			cur, err := paybatch.ParseCurrency(tt.cur)
			if err != nil {
				t.Fatal(err)
			}
			got, err := paybatch.ParseMoney(tt.in, cur)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseMoney(%q, %s) = %v, want error", tt.in, tt.cur, got)
				}
				if !errors.Is(err, tt.errHas) {
					t.Fatalf("error %v does not wrap %v", err, tt.errHas)
				}
				if err.Error() == tt.errHas.Error() {
					t.Fatalf("error %q gives no reason", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMoney(%q, %s): %v", tt.in, tt.cur, err)
			}
			if got.String() != tt.want || got.Minor != tt.minor {
				t.Fatalf("ParseMoney(%q, %s) = %s (%d minor), want %s (%d)", tt.in, tt.cur, got, got.Minor, tt.want, tt.minor)
			}
		})
	}
}

func TestParseCurrency(t *testing.T) {
	for code, exp := range map[string]int{"USD": 2, "GBP": 2, "JPY": 0, "KRW": 0, "UGX": 0, "KWD": 3, "BHD": 3} {
		c, err := paybatch.ParseCurrency(code)
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		if c.Exponent() != exp {
			t.Errorf("%s exponent = %d, want %d", code, c.Exponent(), exp)
		}
	}
	for _, bad := range []string{"", "US", "USDD", "XYZ", "12$"} {
		if _, err := paybatch.ParseCurrency(bad); !errors.Is(err, paybatch.ErrBadCurrency) {
			t.Errorf("ParseCurrency(%q) err = %v, want ErrBadCurrency", bad, err)
		}
	}
}

func TestTotalsNeverMixCurrencies(t *testing.T) {
	usd, jpy := paybatch.MustCurrency("USD"), paybatch.MustCurrency("JPY")
	tot := paybatch.Totals{}
	for _, m := range []paybatch.Money{{Currency: usd, Minor: 150}, {Currency: jpy, Minor: 1000}, {Currency: usd, Minor: 250}} {
		if err := tot.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	got := tot.Strings()
	if got["USD"] != "4.00" || got["JPY"] != "1000" || len(got) != 2 {
		t.Fatalf("totals = %v", got)
	}
	if _, err := (paybatch.Money{Currency: usd, Minor: 1}).Add(paybatch.Money{Currency: jpy, Minor: 1}); !errors.Is(err, paybatch.ErrCurrencyMismatch) {
		t.Fatalf("adding USD to JPY: err = %v", err)
	}
}

func TestSummaryJSONRoundTrip(t *testing.T) {
	usd, kwd := paybatch.MustCurrency("USD"), paybatch.MustCurrency("KWD")
	s := paybatch.Summary{
		Categories: map[paybatch.Category]paybatch.CategoryTotals{
			paybatch.CatMatched: {Count: 2, Totals: paybatch.Totals{"USD": {Currency: usd, Minor: 12345}}},
		},
		MatchRate:      0.5,
		LedgerTotals:   paybatch.Totals{"USD": {Currency: usd, Minor: 20000}, "KWD": {Currency: kwd, Minor: 1500}},
		ProviderTotals: paybatch.Totals{"USD": {Currency: usd, Minor: 12345}},
		// a void the ledger records at 10.00: not part of the difference
		NoProviderAmount: paybatch.Totals{"USD": {Currency: usd, Minor: 1000}},
	}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"categories":{"amount_mismatch":{"count":0,"totals":{}},"currency_mismatch":{"count":0,"totals":{}},"duplicate_at_provider":{"count":0,"totals":{}},"duplicate_in_ledger":{"count":0,"totals":{}},"matched":{"count":2,"totals":{"USD":"123.45"}},"missing_at_provider":{"count":0,"totals":{}},"missing_in_ledger":{"count":0,"totals":{}},"pending":{"count":0,"totals":{}},"rejected_before_send":{"count":0,"totals":{}},"rejected_by_provider":{"count":0,"totals":{}},"status_mismatch":{"count":0,"totals":{}}},"match_rate":0.5,"ledger_totals":{"KWD":"1.500","USD":"200.00"},"provider_totals":{"USD":"123.45"},"no_provider_amount":{"USD":"10.00"},"difference":{"KWD":"1.500","USD":"66.55"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back paybatch.Summary
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if back.Categories[paybatch.CatMatched].Totals["USD"].Minor != 12345 || back.LedgerTotals["KWD"].String() != "1.500" {
		t.Fatalf("round trip lost data: %+v", back)
	}
}
