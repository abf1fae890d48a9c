package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch/writers/cardtest"
)

// TestReconcileMasksCardNumbersInEveryColumn: every text column of the input
// files reaches every output of `paybatch reconcile` with its card numbers
// masked — the provider's transaction_id and the merchant_transaction_id
// (both left the reports and exports unmasked), the statuses, the ledger's
// type and date, the reason — in the workbook, the CSV and Parquet exports,
// the JSON summary, the --db file, stdout and the errors naming a bad line.
func TestReconcileMasksCardNumbersInEveryColumn(t *testing.T) {
	c := cardtest.Numbers
	dir := t.TempDir()
	ledger := filepath.Join(dir, "ledger.csv")
	results := filepath.Join(dir, "results.csv")
	os.WriteFile(ledger, []byte("merchant_transaction_id,amount,currency,type,date,expected_status\n"+
		c[0]+",1.00,USD,refund "+c[6]+",\""+c[7]+"\",succeeded\n"+
		"A,2.00,USD,refund,2026-11-21,succeeded\n"+
		"\""+c[1]+"\",3.00,USD,refund,2026-11-21,succeeded\n"+
		"M,4.00,USD,refund,2026-11-21,declined\n"), 0o644)
	os.WriteFile(results, []byte("merchant_transaction_id,amount,currency,status,transaction_id,reason\n"+
		c[0]+",1.00,USD,APPROVED,tx-1,ok\n"+
		"A,2.50,USD,APPROVED,"+c[2]+",ok\n"+
		"\""+c[1]+"\",3.00,USD,DECLINED,\""+c[3]+"\",card "+c[8]+"\n"+
		"B,5.00,USD,APPROVED,\""+c[4]+"\",\n"+
		c[5]+",6.00,USD,APPROVED,tx-6,\n"), 0o644)
	out := filepath.Join(dir, "out")
	db := filepath.Join(dir, "recon.duckdb")
	stdout, stderr, code := runCmd(t, "reconcile", "--ledger", ledger, "--results", results, "--db", db,
		"--out", filepath.Join(out, "report.xlsx"), "--csv", filepath.Join(out, "csv"),
		"--parquet", filepath.Join(out, "parquet"), "--json", filepath.Join(out, "summary.json"))
	if code != exitExceptions {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"report.xlsx", "csv/matched.csv", "parquet/missing_in_ledger.parquet", "summary.json"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("output %s missing: %v (the scan would prove nothing)", want, err)
		}
	}
	cardtest.NoLeaks(t, out, db)
	for name, s := range map[string]string{"stdout": stdout, "stderr": stderr} {
		for _, l := range cardtest.Text(name, s) {
			t.Errorf("unmasked card number: %s", l)
		}
	}
	// the masked ids are there (the scan saw the rows)
	b, err := os.ReadFile(filepath.Join(out, "csv", "missing_in_ledger.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "401288******1881") || !strings.Contains(string(b), "601100******9424") {
		t.Errorf("missing_in_ledger.csv lacks the masked ids and transaction ids:\n%s", b)
	}

	// errors: a bad line names its value, masked (as main prints the error)
	for name, body := range map[string]string{
		"status":   "merchant_transaction_id,amount,currency,status\nA,1.00,USD," + c[9] + "\n",
		"currency": "merchant_transaction_id,amount,currency,status\nA,1.00,\"" + c[10] + "\",APPROVED\n",
		"amount":   "merchant_transaction_id,amount,currency,status\n" + c[0] + ",\"" + c[11] + "\",USD,APPROVED\n",
	} {
		t.Run("error/"+name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.csv")
			os.WriteFile(bad, []byte(body), 0o644)
			var o, e strings.Builder
			err := run(context.Background(), []string{"reconcile", "--ledger", ledger, "--results", bad, "--json", "-"}, env{stdout: &o, stderr: &e})
			if err == nil {
				t.Fatalf("a bad %s was accepted", name)
			}
			msg := errorLine(err)
			for _, l := range cardtest.Text("error", msg+"\n"+o.String()+"\n"+e.String()) {
				t.Errorf("unmasked card number: %s", l)
			}
			if !strings.Contains(msg, "******") {
				t.Errorf("the error does not show the masked value:\n%s", msg)
			}
		})
	}
}
