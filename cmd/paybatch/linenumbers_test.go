package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestReportRowNumbersAreLines: the report names each CSV record by the line
// where it starts (header = 1), though blank lines and quoted line breaks
// (LF and CRLF) come before it: the workbook's and the CSV export's
// source_row, and reconcile --json's problems.
func TestReportRowNumbersAreLines(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n"} {
		dir := t.TempDir()
		j := func(lines ...string) string { return strings.Join(lines, nl) + nl }
		ledger := j("merchant_transaction_id,amount,currency,note", // 1
			`A1,1.00,EUR,"two`, // 2
			`lines"`,
			"",               // 4: blank
			"A2,2.00,EUR,x",  // 5: missing at the provider
			`A3,3.00,EUR,"a`, // 6
			"",
			`b"`,
			"A4,4.00,EUR,y") // 9
		results := j("merchant_transaction_id,amount,currency,status,reason", // 1
			"",                        // 2
			`A1,1.00,EUR,APPROVED,"x`, // 3: matched
			`y"`,
			`A3,3.50,EUR,APPROVED,`,  // 5: amount mismatch
			`A4,4.00,EUR,DECLINED,"`, // 6: declined
			`"`,
			`B1,1.00,EUR,APPROVED,`) // 8: missing in the ledger
		want := map[string]int{"A1": 3, "A2": 5, "A3": 5, "A4": 6, "B1": 8}
		lpath, rpath := filepath.Join(dir, "ledger.csv"), filepath.Join(dir, "results.csv")
		os.WriteFile(lpath, []byte(ledger), 0o644)
		os.WriteFile(rpath, []byte(results), 0o644)
		xlsx, csvDir := filepath.Join(dir, "report.xlsx"), filepath.Join(dir, "csv")
		out, errs, code := runCmd(t, "reconcile", "--results", rpath, "--ledger", lpath, "--out", xlsx, "--csv", csvDir)
		if code != exitExceptions {
			t.Fatalf("%q: exit %d\n%s\n%s", nl, code, out, errs)
		}
		f, err := excelize.OpenFile(xlsx)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, sheet := range f.GetSheetList() {
			rows, _ := f.GetRows(sheet)
			if len(rows) == 0 {
				continue
			}
			id, row := slices.Index(rows[0], "merchant_transaction_id"), slices.Index(rows[0], "source_row")
			if id < 0 || row < 0 {
				continue
			}
			for _, r := range rows[1:] {
				if len(r) <= row || len(r) <= id {
					continue
				}
				seen++
				if w, ok := want[r[id]]; !ok || r[row] != strconv.Itoa(w) {
					t.Errorf("%q: sheet %s: %s on row %s, want line %d", nl, sheet, r[id], r[row], w)
				}
			}
		}
		f.Close()
		if seen != len(want) {
			t.Errorf("%q: %d rows in the workbook, want %d", nl, seen, len(want))
		}
		b, err := os.ReadFile(filepath.Join(csvDir, "missing_at_provider.csv"))
		if err != nil || !strings.Contains(string(b), ",5,") && !strings.Contains(string(b), ",5\n") && !strings.Contains(string(b), ",5\r\n") {
			t.Errorf("%q: missing_at_provider.csv does not name line 5 (%v):\n%s", nl, err, b)
		}

		// a problem is named by its line
		os.WriteFile(rpath, []byte(strings.Replace(results, "B1,1.00", "B1,1.0x", 1)), 0o644)
		out, errs, code = runCmd(t, "reconcile", "--results", rpath, "--ledger", lpath, "--json", "-")
		if code == 0 || !strings.Contains(out+errs, "row 8") {
			t.Errorf("%q: reconcile --json: exit %d, want a problem on row 8\n%s\n%s", nl, code, out, errs)
		}
	}
}
