package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// TestTotalsBeyondInt64Refused: per-currency totals are sums of int64 minor
// units. Amounts that add up beyond int64 must be refused, naming the file,
// the currency and the fix — never wrapped, and never DuckDB's conversion
// error of the HUGEINT sum (which named nothing). Each line is at the limit
// of 10^15 minor units (10,000,000,000,000.00 USD); 9,300 of them pass
// int64 (9.22 × 10^18).
func TestTotalsBeyondInt64Refused(t *testing.T) {
	const n = 9300
	dir := t.TempDir()
	write := func(name, header string, line func(i int) string) string {
		var b strings.Builder
		b.WriteString(header + "\n")
		for i := range n {
			b.WriteString(line(i) + "\n")
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := "10000000000000.00"
	ledger := write("ledger.csv", "merchant_transaction_id,amount,currency", func(i int) string {
		return fmt.Sprintf("L%05d,%s,USD", i, big)
	})
	// the same ids executed for the same amounts: matched, every total beyond int64
	results := write("results.csv", "merchant_transaction_id,amount,currency,status", func(i int) string {
		return fmt.Sprintf("L%05d,%s,USD,APPROVED", i, big)
	})
	// nothing in the ledger: the provider's total and missing_in_ledger's
	other := write("other.csv", "merchant_transaction_id,amount,currency,status", func(i int) string {
		return fmt.Sprintf("P%05d,%s,USD,APPROVED", i, big)
	})
	// a ledger of half the lines (fits) and the same ids refunded negative
	// at the provider (fits): only ledger − provider passes int64
	half := filepath.Join(dir, "half.csv")
	neg := filepath.Join(dir, "neg.csv")
	{
		var l, p strings.Builder
		l.WriteString("merchant_transaction_id,amount,currency\n")
		p.WriteString("merchant_transaction_id,amount,currency,status\n")
		for i := range 5000 {
			fmt.Fprintf(&l, "H%05d,%s,USD\n", i, big)
			fmt.Fprintf(&p, "H%05d,-%s,USD,APPROVED\n", i, big)
		}
		os.WriteFile(half, []byte(l.String()), 0o644)
		os.WriteFile(neg, []byte(p.String()), 0o644)
	}
	small := write("small.csv", "merchant_transaction_id,amount,currency", func(i int) string {
		return fmt.Sprintf("S%05d,1.00,USD", i)
	})
	// a duplicate id sends Run to the exact path (categorize.sql, the totals' SQL)
	dup := filepath.Join(dir, "ledger_dup.csv")
	b, _ := os.ReadFile(ledger)
	os.WriteFile(dup, append(b, []byte("L00000,1.00,USD\n")...), 0o644)

	cases := []struct {
		name            string
		ledger, results string
		rows            bool
		want            []string // in the message
	}{
		{"one pass: matched", ledger, results, false, []string{"ledger.csv", "USD"}},
		{"one pass: provider only", small, other, false, []string{"other.csv", "USD"}},
		{"rows: matched", ledger, results, true, []string{"ledger.csv", "USD"}},
		{"rows: provider only", small, other, true, []string{"other.csv", "USD"}},
		{"exact path: duplicates", dup, results, false, []string{"USD"}},
		{"difference only", half, neg, false, []string{"half.csv", "neg.csv", "USD", "difference"}},
		{"difference only, rows", half, neg, true, []string{"half.csv", "neg.csv", "USD", "difference"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: c.rows})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.LoadLedger(ctx, c.ledger, ""); err != nil {
				t.Fatal(err)
			}
			if err := r.LoadResults(ctx, c.results, ""); err != nil {
				t.Fatal(err)
			}
			sum, err := r.Run(ctx)
			if err == nil {
				t.Fatalf("totals beyond int64 accepted: ledger %v, provider %v, difference %v",
					sum.LedgerTotals, sum.ProviderTotals, sum.Difference())
			}
			var oe *OverflowError
			if !errors.As(err, &oe) || !errors.Is(err, paybatch.ErrUnusableFile) {
				t.Errorf("error %T %v: want an *OverflowError (a paybatch.ErrUnusableFile)", err, err)
			}
			msg := err.Error()
			for _, w := range append(c.want, "split the file", "92233720368547758.07") {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q: %s", w, msg)
				}
			}
		})
	}
}
