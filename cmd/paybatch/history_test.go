package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// TestRunReportCoversItsRunAndHistoryListsRuns is #16 finding 10: night 2
// of a job reconciles night 2's input (not night 1's rows again), each
// night's report is kept under its own name beside report.xlsx, and
// `paybatch history` lists both runs — on a DuckDB journal and on a
// PostgreSQL one.
func TestRunReportCoversItsRunAndHistoryListsRuns(t *testing.T) {
	t.Run("duckdb", func(t *testing.T) { runReportCoversItsRun(t) })
	t.Run("postgres", func(t *testing.T) {
		runReportCoversItsRun(t, [2]string{"# journal: ../paybatch-out/journal.duckdb", "journal: " + pgtest.URL(t)})
	})
}

func runReportCoversItsRun(t *testing.T, edits ...[2]string) {
	jobPath, root := exampleJob(t, append([][2]string{{"  - demo/refunds.csv", "  - demo/refunds*.csv"}}, edits...)...)
	ts := demoSandbox(t)
	getenv := demoEnv(ts, nil)
	runJob := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, env{stdout: &out, stderr: &errb, getenv: getenv})
		return out.String() + errb.String(), err
	}
	if out, err := runJob("run", "--config", jobPath); exitCode(err) != exitExceptions {
		t.Fatalf("night 1: %v, want exit 1 (the demo has exceptions)\n%s", err, out)
	}
	// Night 2: a new batch and that night's ledger export.
	demo := filepath.Join(root, "testdata", "demo")
	writeFile(t, filepath.Join(demo, "refunds-night2.csv"), "Terminal,Transaction Reference ID,Order Reference ID,Merchant Txn ID,Amount,Currency\nABC123,TXS00001,ORS00001,RF-2001,10.00,USD\n")
	writeFile(t, filepath.Join(demo, "ledger.csv"), "merchant_transaction_id,amount,currency,type,date,expected_status\nRF-2001,10.00,USD,refund,2026-11-22,succeeded\n")
	out, err := runJob("run", "--config", jobPath, "--json")
	if err != nil {
		t.Fatalf("night 2: %v, want exit 0: its one row matched, night 1's exceptions are night 1's\n%s", err, out)
	}
	if !strings.Contains(out, "Reconciled 1 ids: 1 matched") {
		t.Errorf("night 2 reconciled more than its own input:\n%s", out)
	}

	outDir := filepath.Join(root, "paybatch-out")
	dated, _ := filepath.Glob(filepath.Join(outDir, "report-*.xlsx"))
	if len(dated) != 2 {
		t.Fatalf("dated reports %v, want one per night", dated)
	}

	hist, err := runJob("history", "--config", jobPath, "--json")
	if err != nil {
		t.Fatalf("history: %v\n%s", err, hist)
	}
	var runs []job.PastRun
	if err := json.Unmarshal([]byte(hist), &runs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, hist)
	}
	if len(runs) != 2 {
		t.Fatalf("history lists %d runs, want 2:\n%s", len(runs), hist)
	}
	night2, night1 := runs[0], runs[1] // newest first
	if night2.State != "finished" || night1.State != "finished" {
		t.Errorf("states %q, %q, want finished", night2.State, night1.State)
	}
	if len(night2.Inputs) != 1 || filepath.Base(night2.Inputs[0].Path) != "refunds-night2.csv" || night2.Rows != 1 {
		t.Errorf("night 2 inputs %+v rows %d", night2.Inputs, night2.Rows)
	}
	if len(night1.Inputs) != 1 || filepath.Base(night1.Inputs[0].Path) != "refunds.csv" || night1.Rows != 8 {
		t.Errorf("night 1 inputs %+v rows %d", night1.Inputs, night1.Rows)
	}
	if night2.Matched == nil || *night2.Matched != 1 || night2.Exceptions == nil || *night2.Exceptions != 0 {
		t.Errorf("night 2 counts: matched %v exceptions %v", night2.Matched, night2.Exceptions)
	}
	if night1.Exceptions == nil || *night1.Exceptions == 0 || night2.LedgerTotals["USD"] != "10.00" {
		t.Errorf("night 1 exceptions %v; night 2 ledger totals %v", night1.Exceptions, night2.LedgerTotals)
	}
	latest, _ := os.ReadFile(filepath.Join(outDir, "report.xlsx"))
	kept, _ := os.ReadFile(night2.Report)
	if len(kept) == 0 || !bytes.Equal(latest, kept) {
		t.Errorf("report.xlsx is not night 2's report %s", night2.Report)
	}
	if _, err := os.Stat(night1.Report); err != nil || night1.Report == night2.Report {
		t.Errorf("night 1's report %s not kept: %v", night1.Report, err)
	}
	table, err := runJob("history", "--config", jobPath)
	if err != nil || !strings.Contains(table, "refunds-night2.csv") || !strings.Contains(table, "USD 10.00") {
		t.Errorf("history table (%v):\n%s", err, table)
	}
}
