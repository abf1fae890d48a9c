package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	spsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
)

// TestReportShowsDirectDebitFacts is issue 16 finding 7 through the real
// CLI and the SmarterPay sandbox: a collection asked for on a Saturday is
// collected on the Monday, and the report says so; a collected payment
// shows no reason; a cancelled one shows no amount collected.
func TestReportShowsDirectDebitFacts(t *testing.T) {
	fixtures := demoFixtures(t)
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 3, Fixtures: fixtures,
		SmarterPay: spsandbox.SandboxConfig{SubmitAfter: 50 * time.Millisecond, SettleAfter: 50 * time.Millisecond}})
	sat := time.Now().UTC().AddDate(0, 1, 0)
	for sat.Weekday() != time.Saturday {
		sat = sat.AddDate(0, 0, 1)
	}
	day := sat.Format("2006-01-02")
	dir := t.TempDir()
	batch := filepath.Join(dir, "dd.csv")
	writeFile(t, batch, "Mandate,Amount,Collection Date,Reference,Description\n"+
		"M0000000000000001,25.32,"+day+",DD-0001,November subscription\n"+
		"M0000000000000003,99.99,"+day+",DD-0003,mandate cancelled by the payer\n")
	ledger := filepath.Join(dir, "ledger.csv")
	writeFile(t, ledger, "merchant_transaction_id,amount,currency,expected_status\nDD-0001,25.32,GBP,succeeded\nDD-0003,99.99,GBP,succeeded\n")
	vars := map[string]string{"SMARTERPAY_TOKEN": "sp_test_token", "SMARTERPAY_BASE_URL": ts.URL + "/service.svc"}
	journal := filepath.Join(dir, "out", "journal.duckdb")
	if out, errs, code := runCLI(t, vars, "submit", "--kind", "dd-payment", "--journal", journal, "--poll-deadline", "30s", batch); code != exitExceptions {
		t.Fatalf("submit: exit %d\n%s\n%s", code, out, errs)
	}
	report := filepath.Join(dir, "out", "report.xlsx")
	if out, errs, code := runCLI(t, vars, "reconcile", "--journal", journal, "--ledger", ledger, "--out", report); code != exitExceptions {
		t.Fatalf("reconcile: exit %d\n%s\n%s", code, out, errs)
	}
	f, err := excelize.OpenFile(report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]map[string]string{}
	for _, sheet := range []string{"Exceptions", "Matched"} {
		rs, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs[1:] {
			m := map[string]string{}
			for i, h := range rs[0] {
				if i < len(r) {
					m[h] = r[i]
				}
			}
			rows[m["merchant_transaction_id"]] = m
		}
	}
	ok := rows["DD-0001"]
	if ok["requested_date"] != day || ok["provider_date"] == "" || ok["provider_date"] == day || ok["date_moved"] != "moved" {
		t.Errorf("DD-0001 asked for Saturday %s: requested %q, provider %q, moved %q", day, ok["requested_date"], ok["provider_date"], ok["date_moved"])
	}
	if ok["reason"] != "" {
		t.Errorf("DD-0001 was collected, yet reason %q", ok["reason"])
	}
	bad := rows["DD-0003"]
	// SmarterPay records 0.00 for a cancelled payment: that, or nothing,
	// never the 99.99 asked for
	if amt := bad["provider_amount"]; bad["category"] != string(paybatch.CatStatusMismatch) || (amt != "" && amt != "0.00") {
		t.Errorf("DD-0003 (cancelled): %v; want status_mismatch and no amount collected", bad)
	}
	if !strings.Contains(strings.ToLower(bad["provider_status"]), "cancel") {
		t.Errorf("DD-0003 status %q", bad["provider_status"])
	}
}
