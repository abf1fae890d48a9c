package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestOutputsWriteThroughSpecialFiles is #16 finding 3: --json, --out and
// --rejects pointing at a device node turned it into a regular file (as root,
// `--json /dev/null` destroyed /dev/null). Now a device stays a device, a
// symbolic link stays a link and its target gets the report, and a directory
// is refused by name.
func TestOutputsWriteThroughSpecialFiles(t *testing.T) {
	const td = "../../reconcile/testdata/"
	dir := t.TempDir()
	null := filepath.Join(dir, "null")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skip("mknod needs root:", err)
	}
	isDevice := func() bool {
		fi, err := os.Lstat(null)
		return err == nil && fi.Mode()&fs.ModeCharDevice != 0
	}

	out, errs, code := runCmd(t, "reconcile", "--results", td+"results.csv", "--ledger", td+"ledger.csv", "--json", null, "--out", null)
	if code != exitExceptions || !isDevice() {
		t.Fatalf("reconcile --json/--out DEVICE: exit %d, still a device %v\n%s\n%s", code, isDevice(), out, errs)
	}

	batch := filepath.Join(dir, "refunds.csv")
	os.WriteFile(batch, []byte("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n"+
		"ABC123,TXC00000,ORC00000,b-1,10.001,USD\n"), 0o644)
	_, err := runValidate(t, "--kind", "refund", "--rejects", null, batch)
	if exitCode(err) != exitExceptions || !isDevice() {
		t.Fatalf("validate --rejects DEVICE: %v, still a device %v", err, isDevice())
	}

	target := filepath.Join(dir, "reports", "summary.json")
	os.MkdirAll(filepath.Dir(target), 0o755)
	link := filepath.Join(dir, "latest.json")
	os.Symlink(target, link)
	if _, errs, code := runCmd(t, "reconcile", "--results", td+"results.csv", "--ledger", td+"ledger.csv", "--json", link); code != exitExceptions {
		t.Fatalf("reconcile --json LINK: exit %d\n%s", code, errs)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if b, err := os.ReadFile(target); err != nil || !strings.Contains(string(b), "categories") {
		t.Errorf("the link's target did not get the summary: %v %.80s", err, b)
	}

	_, errs, code = runCmd(t, "reconcile", "--results", td+"results.csv", "--ledger", td+"ledger.csv", "--json", dir)
	if code == exitOK || code == exitExceptions || !strings.Contains(errs, "is a directory") {
		t.Errorf("reconcile --json DIR: exit %d, want a refusal naming the directory\n%s", code, errs)
	}
}

// TestRejectsCSVMasksCardNumbers: rejects.csv went through a neutraliser
// that did not mask (#17 "two CSV neutralisers, one does not mask").
func TestRejectsCSVMasksCardNumbers(t *testing.T) {
	dir := t.TempDir()
	batch := filepath.Join(dir, "refunds.csv")
	os.WriteFile(batch, []byte("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n"+
		"ABC123,TXC00000,ORC00000,b-1,4111111111111111,USD\n"), 0o644)
	rejects := filepath.Join(dir, "rejects.csv")
	if _, err := runValidate(t, "--kind", "refund", "--rejects", rejects, batch); exitCode(err) != exitExceptions {
		t.Fatalf("validate: %v", err)
	}
	b, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "4111111111111111") || !strings.Contains(string(b), "411111") {
		t.Errorf("rejects.csv does not mask the card number:\n%s", b)
	}
}

// TestReconcileMatchedRowsCap: --xlsx-matched-rows N keeps every exception
// and the first N matched rows in the workbook, says so on the Summary, and
// the CSV export (written by DuckDB) still holds every matched row.
func TestReconcileMatchedRowsCap(t *testing.T) {
	const td = "../../reconcile/testdata/"
	dir := t.TempDir()
	xlsx, csvDir := filepath.Join(dir, "report.xlsx"), filepath.Join(dir, "csv")
	out, errs, code := runCmd(t, "reconcile", "--results", td+"results.csv", "--ledger", td+"ledger.csv",
		"--out", xlsx, "--csv", csvDir, "--xlsx-matched-rows", "1")
	if code != exitExceptions {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	f, err := excelize.OpenFile(xlsx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	matched, _ := f.GetRows("Matched")
	if len(matched) != 2 {
		t.Errorf("Matched sheet has %d rows, want the header and 1 row", len(matched))
	}
	b, err := os.ReadFile(filepath.Join(csvDir, "matched.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n") - 1; n < 2 {
		t.Errorf("matched.csv has %d rows; the fixture has more than 1 matched row", n)
	}
	sum, _ := f.GetRows("Summary")
	found := false
	for _, r := range sum {
		found = found || (len(r) > 0 && strings.Contains(r[0], "first 1 of the"))
	}
	if !found {
		t.Errorf("Summary does not say the workbook holds 1 matched row")
	}
	if _, errs, code := runCmd(t, "reconcile", "--results", td+"results.csv", "--ledger", td+"ledger.csv",
		"--out", xlsx, "--xlsx-matched-rows", "-1"); code != exitUsage {
		t.Errorf("--xlsx-matched-rows -1: exit %d, want usage\n%s", code, errs)
	}
}
