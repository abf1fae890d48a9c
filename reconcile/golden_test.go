package reconcile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

var update = flag.Bool("update", false, "rewrite golden files and the XLSX fixture in testdata/")

// journalFromCSV builds a journal (with the journal package) from
// testdata/journal.csv and testdata/rejects.csv.
func journalFromCSV(tb testing.TB, dir string) string {
	tb.Helper()
	records := func(name string) []map[string]string {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			tb.Fatal(err)
		}
		var out []map[string]string
		for _, rec := range recs[1:] {
			m := map[string]string{}
			for i, h := range recs[0] {
				m[h] = rec[i]
			}
			out = append(out, m)
		}
		return out
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil && s != "" {
			tb.Fatal(err)
		}
		return n
	}
	var rows []journalRow
	for _, m := range records("testdata/journal.csv") {
		r := journalRow{Key: m["key"], Provider: m["provider"], Kind: m["kind"], Account: m["account"], MTID: m["merchant_transaction_id"],
			Currency: m["currency"], State: m["state"], Outcome: m["outcome"], ProviderStatus: m["provider_status"],
			ProviderID: m["provider_id"], ReasonCode: m["reason_code"], Problem: m["problem"], SourceFile: m["source_file"],
			SourceRow: atoi(m["source_row"]), HTTP: int32(atoi(m["http_status"])),
			CollectionDate: m["collection_date"], ProviderDate: m["provider_date"]}
		if m["amount_minor"] != "" {
			r.Amount = i64(int64(atoi(m["amount_minor"])))
		}
		rows = append(rows, r)
	}
	var rejects []rejectRow
	for _, m := range records("testdata/rejects.csv") {
		rejects = append(rejects, rejectRow{SourceFile: m["source_file"], SourceRow: atoi(m["source_row"]), Column: m["column_name"],
			Value: m["value"], Reason: m["reason"], MTID: m["merchant_transaction_id"]})
	}
	path := filepath.Join(dir, "journal.duckdb")
	writeJournal(tb, path, rows, rejects)
	return path
}

// writeLedgerXLSX turns testdata/ledger.csv into testdata/ledger.xlsx the
// way a spreadsheet program stores it: amounts as numeric cells (raw decimal
// text, never through a float), a blank row in the middle, a notes sheet.
func writeLedgerXLSX(tb testing.TB) {
	tb.Helper()
	b, err := os.ReadFile("testdata/ledger.csv")
	if err != nil {
		tb.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "Ledger")
	f.NewSheet("Notes")
	f.SetCellStr("Notes", "A1", "exported from the merchant ledger")
	row := 1
	for i, rec := range recs {
		if i == 6 {
			row++ // a blank row: row numbers below it must stay the sheet's
		}
		for j, v := range rec {
			cell, _ := excelize.CoordinatesToCellName(j+1, row)
			if i > 0 && j == 1 && !strings.HasSuffix(v, "0") {
				f.SetCellDefault("Ledger", cell, v) // numeric cell, exact text
			} else {
				f.SetCellStr("Ledger", cell, v)
			}
		}
		row++
	}
	if err := f.SaveAs("testdata/ledger.xlsx"); err != nil {
		tb.Fatal(err)
	}
}

// render is the golden text of a reconciliation: the --json summary and
// every row.
func render(tb testing.TB, r *Reconciler, sum paybatch.Summary) string {
	tb.Helper()
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	b.Write(js)
	b.WriteString("\n\n")
	for _, row := range collectRows(tb, r) {
		src := row.Source
		src.File = filepath.Base(src.File)
		fmt.Fprintf(&b, "%-22s %-7s ledger=%-12s provider=%-12s status=%q ledger_status=%q id=%q reason=%q source=%q\n",
			row.Category, row.MerchantTxID, moneyStr(row.LedgerAmount), moneyStr(row.ProviderAmount),
			row.ProviderStatus, row.LedgerStatus, row.ProviderID, row.Reason, src.String())
		if !row.RequestedDate.IsZero() || !row.ProviderDate.IsZero() {
			fmt.Fprintf(&b, "%-22s %-7s requested=%s provider_date=%s moved=%v\n", "", row.MerchantTxID,
				row.RequestedDate.Format("2006-01-02"), row.ProviderDate.Format("2006-01-02"), row.DateMoved())
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	if *update {
		writeLedgerXLSX(t)
	}
	cases := []struct {
		name     string
		ledger   string
		sheet    string
		results  string
		journal  bool
		tol      string
		nonEmpty []paybatch.Category // categories this case must exercise
	}{
		{name: "results_csv", ledger: "testdata/ledger.csv", results: "testdata/results.csv",
			nonEmpty: []paybatch.Category{paybatch.CatMatched, paybatch.CatAmountMismatch, paybatch.CatCurrencyMismatch,
				paybatch.CatStatusMismatch, paybatch.CatPending, paybatch.CatMissingAtProvider, paybatch.CatMissingInLedger,
				paybatch.CatDuplicateInLedger, paybatch.CatDuplicateAtProvider}},
		{name: "journal", ledger: "testdata/ledger.csv", journal: true,
			nonEmpty: paybatch.Categories},
		{name: "xlsx_ledger", ledger: "testdata/ledger.xlsx", sheet: "Ledger", results: "testdata/results.csv",
			nonEmpty: []paybatch.Category{paybatch.CatMatched, paybatch.CatDuplicateInLedger}},
		{name: "tolerance", ledger: "testdata/ledger.csv", results: "testdata/results.csv", tol: "0.02",
			nonEmpty: []paybatch.Category{paybatch.CatAmountMismatch}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := MustOpen(t, tc.tol)
			sum := loadRun(t, r, tc.ledger, tc.sheet, tc.results, tc.journal)
			for _, c := range tc.nonEmpty {
				if sum.Categories[c].Count == 0 {
					t.Errorf("category %s is empty; the fixture should exercise it", c)
				}
			}
			got := render(t, r, sum)
			golden := filepath.Join("testdata", "golden", tc.name+".txt")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./reconcile -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden file (rerun with -update if the change is intended):\n%s", golden, got)
			}
		})
	}
}
