package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

// reconcileOne reconciles a one-line ledger (CSV body after the header
// "merchant_transaction_id,amount,currency") against one APPROVED result
// line and returns the summary or the error.
func reconcileOne(t *testing.T, ledgerPath, results string) (paybatch.Summary, error) {
	t.Helper()
	ctx := context.Background()
	r := MustOpen(t, "")
	if err := r.LoadLedger(ctx, ledgerPath, ""); err != nil {
		return paybatch.Summary{}, err
	}
	if err := r.LoadResults(ctx, writeFile(t, filepath.Dir(ledgerPath), "results.csv", results), ""); err != nil {
		return paybatch.Summary{}, err
	}
	return r.Run(ctx)
}

// Issue #15: 10^15 minor units is inside the documented bound and was
// refused; leading and trailing zeros are not significant and made an
// amount "too many digits". Both paths: DuckDB's CSV reader and readers
// in Go (a "sep=," line makes the file one DuckDB does not take as it is).
func TestAmountBounds(t *testing.T) {
	cases := []struct {
		amount, matchAs string // the ledger's amount; the results' amount it must match ("" = refused)
		want            string // the refusal
	}{
		{amount: "10000000000000.00", matchAs: "10000000000000.00"},
		{amount: "-10000000000000.00", matchAs: "-10000000000000.00"},
		{amount: "10000000000000.01", want: "the limit is 10^15 minor units (10000000000000.00 USD)"},
		{amount: "10." + strings.Repeat("0", 18), matchAs: "10.00"},
		{amount: strings.Repeat("0", 15) + "1.50", matchAs: "1.50"},
		{amount: strings.Repeat("0", 20) + "7." + strings.Repeat("0", 20), matchAs: "7"},
		{amount: "0" + strings.Repeat("0", 20) + ".5" + strings.Repeat("0", 20), matchAs: "0.50"},
		{amount: "1.005" + strings.Repeat("0", 15), want: "more than 2 decimal places"},
	}
	for _, tc := range cases {
		for _, path := range []string{"duckdb", "go"} {
			t.Run(tc.amount+"/"+path, func(t *testing.T) {
				dir := t.TempDir()
				body := "merchant_transaction_id,amount,currency\nA," + tc.amount + ",USD\n"
				if path == "go" {
					body = "sep=,\n" + body
				}
				results := "merchant_transaction_id,amount,currency,status\nA," + tc.matchAs + ",USD,APPROVED\n"
				if tc.matchAs == "" {
					results = "merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\n"
				}
				sum, err := reconcileOne(t, writeFile(t, dir, "ledger.csv", body), results)
				if tc.want != "" {
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("err %v, want %q", err, tc.want)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if sum.Categories[paybatch.CatMatched].Count != 1 {
					t.Errorf("not matched: %+v", sum.Categories)
				}
			})
		}
	}
}

// Issue #15: readers trimmed NBSP from ids and reconcile did not, so a
// ledger line "A<NBSP>" never matched the "A" that was sent. One rule now:
// every Unicode space, both ends, on every path.
func TestIDsTrimmedOfEverySpace(t *testing.T) {
	for _, id := range []string{"A\u00a0", "\u00a0A", "A\u202f", "\u3000A\u2003", " A\t"} {
		for _, format := range []string{"csv", "go", "xlsx"} {
			t.Run(format+"/"+strings.ToValidUTF8(id, "?"), func(t *testing.T) {
				dir := t.TempDir()
				body := "merchant_transaction_id|amount|currency\n" + id + "|1.00|USD\n"
				if format == "go" {
					body = "sep=|\n" + body
				}
				path := writeFile(t, dir, "ledger.csv", body)
				if format == "xlsx" {
					f := excelize.NewFile()
					f.SetSheetRow("Sheet1", "A1", &[]any{"merchant_transaction_id", "amount", "currency"})
					f.SetSheetRow("Sheet1", "A2", &[]any{id, "1.00", "USD"})
					path = filepath.Join(dir, "ledger.xlsx")
					if err := f.SaveAs(path); err != nil {
						t.Fatal(err)
					}
				}
				sum, err := reconcileOne(t, path, "merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\n")
				if err != nil {
					t.Fatal(err)
				}
				if sum.Categories[paybatch.CatMatched].Count != 1 {
					t.Errorf("%q did not match A: %+v", id, sum.Categories)
				}
			})
		}
	}
}

// Issue #15: a ledger XLSX whose cells hold Excel's binary doubles
// (49.990000000000002, what Excel stores for a computed 49.99) was refused
// by reconcile and read as 49.99 by validate. One rule now (readers).
func TestLedgerXLSXBinaryDoubles(t *testing.T) {
	cases := []struct {
		raw, cur, matchAs, want string
	}{
		{raw: "49.990000000000002", cur: "USD", matchAs: "49.99"},
		{raw: "0.30000000000000004", cur: "USD", matchAs: "0.30"},
		{raw: "1.5E+3", cur: "JPY", matchAs: "1500"},
		{raw: "12.345000000000001", cur: "KWD", matchAs: "12.345"},
		{raw: "49.995", cur: "USD", want: "more than 2 decimal places"},
		{raw: "-49.990000000000002", cur: "USD", matchAs: "-49.99"},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			dir := t.TempDir()
			f := excelize.NewFile()
			f.SetSheetRow("Sheet1", "A1", &[]any{"merchant_transaction_id", "amount", "currency"})
			f.SetCellStr("Sheet1", "A2", "A")
			f.SetCellDefault("Sheet1", "B2", tc.raw)
			f.SetCellStr("Sheet1", "C2", tc.cur)
			path := filepath.Join(dir, "ledger.xlsx")
			if err := f.SaveAs(path); err != nil {
				t.Fatal(err)
			}
			matchAs := tc.matchAs
			if matchAs == "" {
				matchAs = "1"
			}
			sum, err := reconcileOne(t, path, "merchant_transaction_id,amount,currency,status\nA,"+matchAs+","+tc.cur+",APPROVED\n")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Categories[paybatch.CatMatched].Count != 1 {
				t.Errorf("%s %s did not match %s: %+v", tc.raw, tc.cur, tc.matchAs, sum.Categories)
			}
		})
	}
}

// A directory named key=value in a file's path is no column: DuckDB's hive
// partitioning would add one (and a "currency=USD" directory would claim
// the currency role), so the CSV was read in Go, 3× slower, and a Parquet
// header gained a column.
func TestHiveLikePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "currency=USD", "rows=3")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ledger := writeFile(t, dir, "ledger.csv", "merchant_transaction_id,amount,currency\nA,1.00,EUR\nB,2.00,EUR\n")
	// the Parquet file is written outside, then moved in
	pq := filepath.Join(dir, "l2.parquet")
	if err := os.Rename(csvToParquet(t, writeFile(t, t.TempDir(), "l2.csv", "merchant_transaction_id,amount,currency\nA,1.00,EUR\nB,2.00,EUR\n")), pq); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ledger, pq} {
		ctx := context.Background()
		r := MustOpen(t, "")
		if err := r.LoadLedger(ctx, p, ""); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if s := r.sources[0]; s.format == "csv" && s.staged {
			t.Errorf("%s: read in Go; DuckDB saw another column", p)
		}
		if err := r.LoadResults(ctx, writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status\nA,1.00,EUR,APPROVED\nB,2.00,EUR,APPROVED\n"), ""); err != nil {
			t.Fatal(err)
		}
		sum, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Categories[paybatch.CatMatched].Count != 2 {
			t.Errorf("%s: %+v", p, sum.Categories)
		}
	}
}
