package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

// TestDemoEndToEnd runs `paybatch demo` through the real run function: the
// real sandbox over HTTP, the real journal and DuckDB, and the real workbook,
// read back with excelize.
func TestDemoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"demo", "--dir", dir}, env{stdout: &stdout, stderr: &stderr})
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	report := filepath.Join(dir, "report.xlsx")
	if !strings.Contains(stdout.String(), report) {
		t.Errorf("demo output does not say where the report is:\n%s", stdout.String())
	}
	// Again in the same directory: a fresh run against a fresh sandbox,
	// not "nothing new" from the previous run's journal.
	stdout.Reset()
	if err := run(context.Background(), []string{"demo", "--dir", dir}, env{stdout: &stdout, stderr: &stderr}); err != nil {
		t.Fatalf("demo again in %s: %v\n%s", dir, err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "submitting") || strings.Contains(stdout.String(), "nothing new") {
		t.Errorf("second demo in the same dir did not start afresh:\n%s", stdout.String())
	}
	f, err := excelize.OpenFile(report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheets := strings.Join(f.GetSheetList(), ",")
	for _, want := range []string{"Summary", "Exceptions", "Matched"} {
		if !strings.Contains(sheets, want) {
			t.Errorf("workbook sheets %s lack %s", sheets, want)
		}
	}
	// Exceptions: one row per exception id, with its category.
	rows, err := f.GetRows("Exceptions")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[cell(r, rows[0], "merchant_transaction_id")] = cell(r, rows[0], "category")
	}
	want := map[string]paybatch.Category{
		"RF-1003": paybatch.CatAmountMismatch,
		"RF-1004": paybatch.CatStatusMismatch,
		"RF-1008": paybatch.CatStatusMismatch,
		"RF-1007": paybatch.CatMissingInLedger,
		"RF-1009": paybatch.CatMissingAtProvider,
	}
	for id, cat := range want {
		if got[id] != string(cat) {
			t.Errorf("%s: category %q, want %q (exceptions: %v)", id, got[id], cat, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("exceptions = %v, want exactly %v", got, want)
	}
	matched, err := f.GetRows("Matched")
	if err != nil {
		t.Fatal(err)
	}
	if len(matched)-1 != 4 {
		t.Errorf("matched rows = %d, want 4 (RF-1001, RF-1002, RF-1005, RF-1006)", len(matched)-1)
	}
}

// cell returns the value under the header whose text, lower-cased with
// spaces as underscores, equals name.
func cell(row, header []string, name string) string {
	for i, h := range header {
		if strings.ReplaceAll(strings.ToLower(strings.TrimSpace(h)), " ", "_") == name && i < len(row) {
			return row[i]
		}
	}
	return ""
}
