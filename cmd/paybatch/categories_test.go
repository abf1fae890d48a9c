package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/paybatch/paybatch"
)

// TestRunRejectedRowsKeepTheirIDs is issue 16 finding 5's reproduction:
// three batch rows the reader rejects (bad amounts, ids readable) used to
// lose their ids, so their ledger lines became missing_at_provider beside
// three id-less rejected_before_send rows: 8 ids, match rate 0.125. Each
// rejected row is its ledger line's rejected_before_send: 5 ids, 0.2.
func TestRunRejectedRowsKeepTheirIDs(t *testing.T) {
	job, root := exampleJob(t, [2]string{"allow_partial: false", "allow_partial: true"})
	batch := "Terminal,Transaction Reference ID,Order Reference ID,Merchant Txn ID,Amount,Currency\n" +
		"ABC123,TXS00001,ORS00001,RF-1001,25.00,USD\n" +
		"ABC123,TXS00002,ORS00002,RF-1002,80.001,USD\n" +
		"ABC123,TXS00003,ORS00003,RF-1003,ten,GBP\n" +
		"TERM01,TXS00004,ORS00004,RF-1004,50.51,XXX\n" +
		"TERM01,TXS00005,ORS00005,RF-1005,5000,JPY\n"
	ledger := "merchant_transaction_id,amount,currency,type,date,expected_status\n" +
		"RF-1001,25.00,USD,refund,2026-11-21,succeeded\n" +
		"RF-1002,80.00,USD,refund,2026-11-21,succeeded\n" +
		"RF-1003,10.00,GBP,refund,2026-11-21,succeeded\n" +
		"RF-1004,50.51,EUR,refund,2026-11-21,succeeded\n" +
		"RF-1005,4000,JPY,refund,2026-11-21,succeeded\n"
	runJobOnDemo(t, job, root, batch, ledger)
	b, err := os.ReadFile(filepath.Join(root, "paybatch-out", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum paybatch.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	want := map[paybatch.Category]int64{
		paybatch.CatMatched: 1, paybatch.CatAmountMismatch: 1, paybatch.CatRejectedBeforeSend: 3,
	}
	var total int64
	for _, c := range paybatch.Categories {
		total += sum.Categories[c].Count
		if got := sum.Categories[c].Count; got != want[c] {
			t.Errorf("%s: %d ids, want %d", c, got, want[c])
		}
	}
	if total != 5 || sum.MatchRate != 0.2 {
		t.Errorf("%d ids, match rate %v; want 5 and 0.2\n%s", total, sum.MatchRate, b)
	}
	// the rejected ids carry their ledger amounts
	if got := sum.Categories[paybatch.CatRejectedBeforeSend].Totals.String(); got != "EUR 50.51  GBP 10.00  USD 80.00" {
		t.Errorf("rejected_before_send totals %q", got)
	}
}

// TestRunProviderRefusalHasItsOwnCategory: a refund the provider refuses
// (409 REFUND_EXCEEDS_ORIGINAL) was sent; it is rejected_by_provider, not
// rejected_before_send (issue 16, finding 5).
func TestRunProviderRefusalHasItsOwnCategory(t *testing.T) {
	job, root := exampleJob(t)
	batch := "Terminal,Transaction Reference ID,Order Reference ID,Merchant Txn ID,Amount,Currency\n" +
		"ABC123,TXS00001,ORS00001,RF-1001,25.00,USD\n" +
		"ABC123,TXS00002,ORS00002,RF-1002,500.00,USD\n" // the sale was 80.00
	ledger := "merchant_transaction_id,amount,currency,type,date,expected_status\n" +
		"RF-1001,25.00,USD,refund,2026-11-21,succeeded\n" +
		"RF-1002,500.00,USD,refund,2026-11-21,succeeded\n"
	stdout := runJobOnDemo(t, job, root, batch, ledger)
	b, err := os.ReadFile(filepath.Join(root, "paybatch-out", "csv", "rejected_by_provider.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("RF-1002")) || !bytes.Contains(b, []byte("REFUND_EXCEEDS_ORIGINAL")) {
		t.Errorf("rejected_by_provider.csv:\n%s\nstdout:\n%s", b, stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "paybatch-out", "csv", "rejected_before_send.csv")); bytes.Contains(b, []byte("RF-1002")) {
		t.Errorf("a refusal counted as never sent:\n%s", b)
	}
}

// runJobOnDemo writes batch and ledger as the example job's demo refunds.csv and
// ledger.csv under root (writeDemo), runs the job against the demo sandbox
// and wants exceptions (exit 1); it returns what the run printed.
func runJobOnDemo(t *testing.T, job, root, batch, ledger string) (stdout string) {
	t.Helper()
	writeDemo(t, root, batch, ledger)
	ts := demoSandbox(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", job}, env{stdout: &out, stderr: &errb, getenv: demoEnv(ts, nil)})
	if exitCode(err) != exitExceptions {
		t.Fatalf("exit %d (%v), want 1\n%s\n%s", exitCode(err), err, out.String(), errb.String())
	}
	return out.String()
}

// writeDemo replaces the example job's demo batch (refunds.csv) and
// ledger.csv under root.
func writeDemo(t *testing.T, root, batch, ledger string) {
	t.Helper()
	for name, body := range map[string]string{"refunds.csv": batch, "ledger.csv": ledger} {
		if err := os.WriteFile(filepath.Join(root, "testdata", "demo", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
