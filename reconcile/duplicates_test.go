package reconcile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

// Run's single pass joins the two sides instead of grouping every line by id
// (sql/summary.sql), so it must prove there was no duplicate in another way:
// a line count per side for an id repeated on one side and present on the
// other, and a grouping of the unmatched ids for an id repeated on one side
// only. Each case holds exactly one kind of duplicate beside clean ids, so
// that each proof is needed on its own: if either is broken, a duplicate is
// counted as matched or missing and this test fails.
func TestSinglePassFindsEveryDuplicate(t *testing.T) {
	const clean = "C1,10.00,USD\nC2,20.00,EUR\nC3,30.00,GBP\n"
	const cleanResults = "C1,10.00,USD,APPROVED\nC2,20.00,EUR,APPROVED\nC3,30.00,GBP,APPROVED\n"
	cases := []struct {
		name    string
		ledgers []string // ledger files' lines after the header (clean ids go in the first)
		results string
		want    map[paybatch.Category]int64
	}{
		{"clean", []string{""}, "", map[paybatch.Category]int64{"matched": 3}},
		{"provider twice, ledger once", []string{"D,5.00,USD\n"}, "D,5.00,USD,APPROVED\nD,5.00,USD,APPROVED\n",
			map[paybatch.Category]int64{"matched": 3, "duplicate_at_provider": 1}},
		{"ledger twice, provider once", []string{"D,5.00,USD\nD,5.00,USD\n"}, "D,5.00,USD,APPROVED\n",
			map[paybatch.Category]int64{"matched": 3, "duplicate_in_ledger": 1}},
		{"both twice", []string{"D,5.00,USD\nD,5.00,USD\n"}, "D,5.00,USD,APPROVED\nD,5.00,USD,DECLINED\n",
			map[paybatch.Category]int64{"matched": 3, "duplicate_at_provider": 1}},
		{"ledger twice, nothing at the provider", []string{"D,5.00,USD\nD,5.00,USD\n"}, "",
			map[paybatch.Category]int64{"matched": 3, "duplicate_in_ledger": 1}},
		{"ledger twice in two currencies, nothing at the provider", []string{"D,5.00,USD\nD,7,JPY\n"}, "",
			map[paybatch.Category]int64{"matched": 3, "duplicate_in_ledger": 1}},
		{"provider twice, no ledger line", []string{""}, "D,5.00,USD,APPROVED\nD,5.00,USD,PROCESSING\n",
			map[paybatch.Category]int64{"matched": 3, "duplicate_at_provider": 1}},
		{"provider twice in two statuses and currencies, no ledger line", []string{""}, "D,5.00,USD,DECLINED\nD,5,JPY,APPROVED\n",
			map[paybatch.Category]int64{"matched": 3, "duplicate_at_provider": 1}},
		{"ledger line in each of two files, provider once", []string{"D,5.00,USD\n", "D,5.00,USD\n"}, "D,5.00,USD,APPROVED\n",
			map[paybatch.Category]int64{"matched": 3, "duplicate_in_ledger": 1}},
		{"ledger line in each of two files, nothing at the provider", []string{"D,5.00,USD\n", "D,5.00,USD\n"}, "",
			map[paybatch.Category]int64{"matched": 3, "duplicate_in_ledger": 1}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := MustOpen(t, "")
			for i, body := range tc.ledgers {
				if i == 0 {
					body = clean + body
				}
				path := writeFile(t, dir, fmt.Sprintf("ledger%d.csv", i), "merchant_transaction_id,amount,currency\n"+body)
				if err := r.LoadLedger(ctx, path, ""); err != nil {
					t.Fatal(err)
				}
			}
			results := writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status\n"+cleanResults+tc.results)
			if err := r.LoadResults(ctx, results, ""); err != nil {
				t.Fatal(err)
			}
			sum, err := r.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range paybatch.Categories {
				if got := sum.Categories[c].Count; got != tc.want[c] {
					t.Errorf("%s: %d ids, want %d", c, got, tc.want[c])
				}
			}
			if wantExact := tc.name != "clean"; r.built != wantExact {
				t.Errorf("Run took the exact path: %v, want %v", r.built, wantExact)
			}
			// and the rows agree with the summary
			rows := collectRows(t, r)
			cats := map[string]paybatch.Category{}
			for _, row := range rows {
				cats[row.MerchantTxID] = row.Category
			}
			for _, id := range []string{"C1", "C2", "C3"} {
				if cats[id] != paybatch.CatMatched {
					t.Errorf("%s is %s, want matched", id, cats[id])
				}
			}
			if tc.name != "clean" {
				for c, n := range tc.want {
					if c != paybatch.CatMatched && n == 1 && cats["D"] != c {
						t.Errorf("D is %s in Rows, want %s", cats["D"], c)
					}
				}
			}
		})
	}
}

// A journal id both rejected (refused before sending) and executed is two
// provider lines. The single pass hands it to the exact path, where the
// executed line decides, with or without a ledger line.
func TestSinglePassJournalRejectedAndExecuted(t *testing.T) {
	ctx := context.Background()
	for _, withLedger := range []bool{false, true} {
		t.Run(fmt.Sprintf("ledger=%v", withLedger), func(t *testing.T) {
			dir := t.TempDir()
			ledger := "merchant_transaction_id,amount,currency\nC1,10.00,USD\nC2,20.00,EUR\n"
			want := map[paybatch.Category]int64{"matched": 2, "missing_in_ledger": 1}
			if withLedger {
				ledger += "R,5.00,USD\n"
				want = map[paybatch.Category]int64{"matched": 3}
			}
			rejected := succeededRow("k3", "R", 500, "USD")
			rejected.State, rejected.Outcome = "rejected", ""
			jpath := filepath.Join(dir, "journal.duckdb")
			writeJournal(t, jpath, []journalRow{succeededRow("k1", "C1", 1000, "USD"), succeededRow("k2", "C2", 2000, "EUR"),
				rejected, succeededRow("k4", "R", 500, "USD")}, nil)
			r := MustOpen(t, "")
			if err := r.LoadLedger(ctx, writeFile(t, dir, "ledger.csv", ledger), ""); err != nil {
				t.Fatal(err)
			}
			if err := r.LoadJournal(ctx, jpath); err != nil {
				t.Fatal(err)
			}
			sum, err := r.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range paybatch.Categories {
				if got := sum.Categories[c].Count; got != want[c] {
					t.Errorf("%s: %d ids, want %d", c, got, want[c])
				}
			}
			if !r.built {
				t.Error("Run kept the single pass for an id with two provider lines")
			}
		})
	}
}

// The single pass compares joined rows with each file's count of records
// (src_<n>, before any check), so every record must reach the join as one
// line, a blank one included. Each input here has blank or unusual records
// and must still take the single pass with the right counts; the same input
// with one id repeated must not.
func TestSinglePassCountsRecords(t *testing.T) {
	const header = "merchant_transaction_id,amount,currency,type\n"
	cases := []struct {
		name   string
		ledger string // the ledger file's records after the header
		format string // "csv" (the default), "xlsx" or "parquet"
	}{
		{name: "plain", ledger: "A,1.00,USD,refund\nB,2.00,EUR,refund\n"},
		{name: "empty lines", ledger: "A,1.00,USD,refund\n\n\nB,2.00,EUR,refund\n\n"},
		{name: "empty fields", ledger: "A,1.00,USD,refund\n,,,\nB,2.00,EUR,refund\n,,,\n"},
		{name: "spaces only", ledger: "A,1.00,USD,refund\n  , ,  ,\nB,2.00,EUR,refund\n"},
		{name: "blank but for the type", ledger: "A,1.00,USD,refund\n,,,note\nB,2.00,EUR,refund\n"},
		{name: "quoted line break", ledger: "A,1.00,USD,\"re\nfund\"\nB,2.00,EUR,\"\n\"\n"},
		{name: "CRLF", ledger: "A,1.00,USD,refund\r\n\r\nB,2.00,EUR,refund\r\n"},
		{name: "no final line break", ledger: "A,1.00,USD,refund\nB,2.00,EUR,refund"},
		{name: "a blank record of another width", ledger: "A,1.00,USD,refund\nB,2.00,EUR,refund\n,,\n"},
		{name: "xlsx with blank rows", format: "xlsx", ledger: "A,1.00,USD,refund\n,,,\nB,2.00,EUR,refund\n,,,\n"},
		{name: "parquet with empty rows", format: "parquet", ledger: "A,1.00,USD,refund\n,,,\nB,2.00,EUR,refund\n"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		for _, dup := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/duplicate=%v", tc.name, dup), func(t *testing.T) {
				dir := t.TempDir()
				body := tc.ledger
				if dup { // A again, first in the file
					body = "A,1.00,USD,refund\n" + body
				}
				text := header + body
				if strings.Contains(body, "\r\n") { // the header too
					text = strings.ReplaceAll(text, "\r\n", "\n")
					text = strings.ReplaceAll(text, "\n", "\r\n")
				}
				path := writeFile(t, dir, "ledger.csv", text)
				switch tc.format {
				case "xlsx":
					path = csvToXLSX(t, path)
				case "parquet":
					path = csvToParquet(t, path)
				}
				r := MustOpen(t, "")
				if err := r.LoadLedger(ctx, path, ""); err != nil {
					t.Fatal(err)
				}
				results := writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\nB,2.00,EUR,APPROVED\n")
				if err := r.LoadResults(ctx, results, ""); err != nil {
					t.Fatal(err)
				}
				sum, err := r.Run(ctx)
				if err != nil {
					t.Fatal(err)
				}
				want := map[paybatch.Category]int64{"matched": 2}
				if dup {
					want = map[paybatch.Category]int64{"matched": 1, "duplicate_in_ledger": 1}
				}
				for _, c := range paybatch.Categories {
					if got := sum.Categories[c].Count; got != want[c] {
						t.Errorf("%s: %d ids, want %d", c, got, want[c])
					}
				}
				if r.built != dup {
					t.Errorf("Run took the exact path: %v, want %v", r.built, dup)
				}
			})
		}
	}
}

// csvToXLSX writes the CSV's records, as text cells, to a workbook beside it.
func csvToXLSX(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	f := excelize.NewFile()
	defer f.Close()
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		for j, v := range strings.Split(line, ",") {
			cell, _ := excelize.CoordinatesToCellName(j+1, i+1)
			if v != "" {
				f.SetCellStr("Sheet1", cell, v)
			}
		}
	}
	out := strings.TrimSuffix(path, ".csv") + ".xlsx"
	if err := f.SaveAs(out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// A results file and a journal may be loaded together (the library allows
// it; the CLI takes one or the other): their lines are one provider side.
func TestSinglePassResultsAndJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := MustOpen(t, "")
	if err := r.LoadLedger(ctx, writeFile(t, dir, "ledger.csv", "merchant_transaction_id,amount,currency\nC1,10.00,USD\nC2,20.00,EUR\nC3,3,JPY\n"), ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status\nC1,10.00,USD,APPROVED\n"), ""); err != nil {
		t.Fatal(err)
	}
	jpath := filepath.Join(dir, "journal.duckdb")
	writeJournal(t, jpath, []journalRow{succeededRow("k2", "C2", 2000, "EUR"), succeededRow("k3", "C3", 3, "JPY")}, nil)
	if err := r.LoadJournal(ctx, jpath); err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.Categories[paybatch.CatMatched].Count; got != 3 || r.built {
		t.Errorf("matched %d (want 3), exact path %v (want the single pass)", got, r.built)
	}
	if n := len(collectRows(t, r, paybatch.CatMatched)); n != 3 {
		t.Errorf("Rows: %d matched, want 3", n)
	}
}
