package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	spsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
)

// TestDirectDebitEndToEnd drives a SmarterPay Direct Debit batch through the
// CLI against the combined sandbox over HTTP — submit, then status, then
// reconcile — and checks the sandbox's record of what it executed.
func TestDirectDebitEndToEnd(t *testing.T) {
	fixtures := demoFixtures(t)
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 3, Fixtures: fixtures, Faults: "5xx=0.1,lost=0.1",
		SmarterPay: spsandbox.SandboxConfig{SubmitAfter: 100 * time.Millisecond, SettleAfter: 100 * time.Millisecond}})

	dir := t.TempDir()
	// Collection dates well ahead so the Bacs lead time never moves them
	// into the past, whatever day the test runs.
	day := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	batch := filepath.Join(dir, "dd.csv")
	writeFile(t, batch, "Mandate,Amount,Collection Date,Reference,Description\n"+
		"M0000000000000001,25.32,"+day+",DD-0001,November subscription\n"+
		"M0000000000000002,10.00,"+day+",DD-0002,Annual fee\n"+
		"M0000000000000003,99.99,"+day+",DD-0003,mandate cancelled by the payer\n"+
		"M0000000000000001,12.51,"+day+",DD-0004,bounces (sandbox trigger 51)\n")
	ledger := filepath.Join(dir, "ledger.csv")
	writeFile(t, ledger, "merchant_transaction_id,amount,currency,expected_status\n"+
		"DD-0001,25.32,GBP,succeeded\nDD-0002,10.00,GBP,succeeded\nDD-0003,99.99,GBP,succeeded\nDD-0004,12.51,GBP,succeeded\n")
	vars := map[string]string{"SMARTERPAY_TOKEN": "sp_test_token", "SMARTERPAY_BASE_URL": ts.URL + "/service.svc"}
	journal := filepath.Join(dir, "out", "journal.duckdb")

	out, errs, code := runCLI(t, vars, "submit", "--kind", "dd-payment", "--journal", journal, "--poll-deadline", "30s", batch)
	if code != exitExceptions {
		t.Fatalf("submit: exit %d, want 1 (one bounce, one cancelled)\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, "sp_test_token") {
		t.Fatal("the token leaked into the output")
	}
	perRef := map[string]int{}
	for _, op := range ts.Server.Operations() {
		perRef[op.Reference]++
	}
	for _, ref := range []string{"DD-0001", "DD-0002", "DD-0003", "DD-0004"} {
		if perRef[ref] != 1 {
			t.Errorf("%s executed %d times, want exactly once despite 5xx and lost responses (%v)", ref, perRef[ref], perRef)
		}
	}

	out, errs, code = runCLI(t, vars, "status", "--journal", journal, "--json")
	if code != exitExceptions || !strings.Contains(out, `"cancelled"`) {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}

	report := filepath.Join(dir, "out", "report.xlsx")
	out, errs, code = runCLI(t, vars, "reconcile", "--journal", journal, "--ledger", ledger, "--out", report, "--json", "-")
	if code != exitExceptions {
		t.Fatalf("reconcile: exit %d\n%s\n%s", code, out, errs)
	}
	var sum paybatch.Summary
	if err := sum.UnmarshalJSON([]byte(out)); err != nil {
		t.Fatalf("reconcile --json: %v\n%s", err, out)
	}
	if got := sum.Categories[paybatch.CatMatched].Count; got != 2 {
		t.Errorf("matched = %d, want 2 (DD-0001, DD-0002)", got)
	}
	if got := sum.Categories[paybatch.CatStatusMismatch].Count; got != 2 {
		t.Errorf("status_mismatch = %d, want 2 (DD-0003 cancelled, DD-0004 bounced)", got)
	}
	if got := sum.ProviderTotals["GBP"].String(); got != "35.32" {
		t.Errorf("provider GBP total = %s, want 35.32 (only what was collected)", got)
	}
	if _, err := os.Stat(report); err != nil {
		t.Errorf("report: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
