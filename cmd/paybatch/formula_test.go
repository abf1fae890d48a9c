package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// writeXLSX writes rows to a new workbook's first sheet (a cell may be an
// excelize.Cell with a formula and its cached value).
func writeXLSX(t *testing.T, path string, rows [][]any) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if err := sw.SetRow(fmt.Sprintf("A%d", i+1), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

// Issue #15: a formula cell in a column reconcile reads (a ledger's amount,
// a results file's status) is refused naming the cell and its last computed
// value, as validate does; --accept-formula-values reads the computed value.
func TestReconcileAcceptFormulaValues(t *testing.T) {
	dir := t.TempDir()
	ledgerCSV := filepath.Join(dir, "ledger.csv")
	resultsCSV := filepath.Join(dir, "results.csv")
	os.WriteFile(ledgerCSV, []byte("merchant_transaction_id,amount,currency\nA,10.00,USD\nB,20.00,USD\n"), 0o644)
	os.WriteFile(resultsCSV, []byte("merchant_transaction_id,amount,currency,status\nA,10.00,USD,APPROVED\nB,20.00,USD,APPROVED\n"), 0o644)
	ledgerXLSX := filepath.Join(dir, "ledger.xlsx")
	writeXLSX(t, ledgerXLSX, [][]any{
		{"merchant_transaction_id", "amount", "currency"},
		{"A", "10.00", "USD"},
		{"B", excelize.Cell{Formula: "B2*2", Value: 20}, "USD"},
	})
	resultsXLSX := filepath.Join(dir, "results.xlsx")
	writeXLSX(t, resultsXLSX, [][]any{
		{"merchant_transaction_id", "amount", "currency", "status"},
		{"A", "10.00", "USD", excelize.Cell{Formula: `"APPROVED"`, Value: "APPROVED"}},
		{"B", "20.00", "USD", "APPROVED"},
	})
	for _, tc := range []struct {
		name             string
		ledger, results  string
		cell, value, col string
	}{
		{"ledger amount", ledgerXLSX, resultsCSV, "row 3", `"20"`, `"amount"`},
		{"results status", ledgerCSV, resultsXLSX, "row 2", `"APPROVED"`, `"status"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCmd(t, "reconcile", "--ledger", tc.ledger, "--results", tc.results, "--json", "-")
			if code != exitUsage {
				t.Fatalf("without the flag: exit %d, want %d\n%s\n%s", code, exitUsage, out, errs)
			}
			for _, w := range []string{tc.cell, tc.col, tc.value, "formula", "--accept-formula-values"} {
				if !strings.Contains(errs, w) {
					t.Errorf("refusal lacks %q:\n%s", w, errs)
				}
			}
			out, errs, code = runCmd(t, "reconcile", "--ledger", tc.ledger, "--results", tc.results, "--json", "-", "--accept-formula-values")
			if code != exitOK || !strings.Contains(out, `"matched"`) || !strings.Contains(errs, "2 matched") {
				t.Fatalf("with the flag: exit %d, want 0 (all matched)\n%s\n%s", code, out, errs)
			}
		})
	}
}
