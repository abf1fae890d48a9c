package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/writers/cardtest"
)

// TestCardNumbersMaskedInEveryOutput is finding 4 of issue 16: reasons from
// a results file and a journal's reader rejects (their values) carried card
// numbers unmasked into the Parquet exports and the --db file.
func TestCardNumbersMaskedInEveryOutput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	card := cardtest.Numbers
	ledger := filepath.Join(dir, "ledger.csv")
	results := filepath.Join(dir, "results.csv")
	os.WriteFile(ledger, []byte("merchant_transaction_id,amount,currency\nA,1.00,USD\nB,2.00,USD\nC,3.00,USD\nR1,4.00,USD\n"), 0o644)
	os.WriteFile(results, []byte("merchant_transaction_id,amount,currency,status,reason\n"+
		"A,1.00,USD,APPROVED,ok\n"+
		"B,2.00,USD,DECLINED,card "+card[0]+" declined\n"+
		"C,3.50,USD,APPROVED,\"paid with "+card[1]+"\"\n"+
		"D,9.00,USD,APPROVED,"+card[2]+"\n"), 0o644)
	journal := filepath.Join(dir, "journal.duckdb")
	writeJournal(t, journal, []journalRow{
		{Key: "k1", Provider: "smartretry", Kind: "refund", MTID: "J1", Amount: i64(100), Currency: "USD",
			State: "rejected", ProviderStatus: "", ReasonCode: "400", Problem: "terminal " + card[3] + " unknown", SourceFile: "b.csv", SourceRow: 2},
	}, []rejectRow{
		{SourceFile: "b.csv", SourceRow: 3, Column: "Amount", Value: card[4], Reason: "not an amount: " + card[4], MTID: "R1"},
		{SourceFile: "b.csv", SourceRow: 4, Column: "Merchant Txn ID", Value: card[5], Reason: "bad id"},
	})

	for _, side := range []string{"results", "journal"} {
		t.Run(side, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "recon.duckdb")
			r, err := Open(ctx, Options{Path: db, TempDir: t.TempDir(), MemoryLimit: "512MB"})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.LoadLedger(ctx, ledger, ""); err != nil {
				t.Fatal(err)
			}
			if side == "results" {
				err = r.LoadResults(ctx, results, "")
			} else {
				err = r.LoadJournal(ctx, journal)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Run(ctx); err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, row := range collectRows(t, r) {
				reasons = append(reasons, row.Reason)
			}
			all := strings.Join(reasons, "\n")
			if leaks := cardtest.Text("Rows", all); len(leaks) > 0 {
				t.Errorf("Rows: %v", leaks)
			}
			if !strings.Contains(all, "******") {
				t.Errorf("no masked number in the reasons (the test lost its inputs?):\n%s", all)
			}
			pq := filepath.Join(t.TempDir(), "pq")
			if _, err := r.ExportParquet(ctx, pq); err != nil {
				t.Fatal(err)
			}
			cardtest.NoLeaks(t, pq)
			if side == "results" { // the journal side's provider table is the journal's (masked when stored)
				r.Close()
				cardtest.NoLeaks(t, db)
			}
			r.Close()
		})
	}
}

// TestDBFileMaskedWithXLSXInputs: a ledger and results read from XLSX go
// through stage tables holding every cell as written; with a database file
// (Options.Path) every table — stage tables, the lines, recon and the rows —
// is left with card numbers masked once Close returns, ids included, and
// Rows gives the ids and the provider's transaction ids masked.
func TestDBFileMaskedWithXLSXInputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := cardtest.Numbers
	ledger := csvToXLSX(t, writeFile(t, dir, "ledger.csv", "merchant_transaction_id,amount,currency,type\n"+
		c[0]+",1.00,USD,refund "+c[1]+"\nA,2.00,USD,refund\n"))
	results := csvToXLSX(t, writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status,transaction_id\n"+
		c[0]+",1.00,USD,APPROVED,"+c[2]+"\nA,2.50,USD,APPROVED,tx-2\n"+c[3]+",3.00,USD,APPROVED,x\n"))
	db := filepath.Join(t.TempDir(), "recon.duckdb")
	r, err := Open(ctx, Options{Path: db, TempDir: t.TempDir(), MemoryLimit: "512MB"})
	if err != nil {
		t.Fatal(err)
	}
	sum := loadRun(t, r, ledger, "", results, false)
	if n := sum.Categories[paybatch.CatMatched].Count; n != 1 { // the card-number id matched as written
		t.Errorf("matched %d, want 1", n)
	}
	var text []string
	for _, row := range collectRows(t, r) {
		text = append(text, row.MerchantTxID, row.ProviderID, row.ProviderStatus, row.LedgerStatus, row.Reason)
	}
	all := strings.Join(text, "\n")
	for _, l := range cardtest.Text("Rows", all) {
		t.Errorf("unmasked card number: %s", l)
	}
	if !strings.Contains(all, "411111******1111") {
		t.Errorf("Rows lack the masked id:\n%s", all)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	cardtest.NoLeaks(t, db)
}
