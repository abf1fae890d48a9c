package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// submit, status and reconcile through the CLI on a PostgreSQL journal
// named by PAYBATCH_JOURNAL_URL (the password from PGPASSWORD): the same
// outcome and the same reconciliation as the DuckDB journal gives.
func TestPostgresJournalThroughCLI(t *testing.T) {
	const n = 30
	url := pgtest.URL(t)
	decline := func(i int) string {
		if i == 4 {
			return "10.51" // the sandbox declines amounts ending .51
		}
		return ""
	}
	dir := t.TempDir()
	file := refundCSV(t, dir, n, decline)
	var ledger strings.Builder
	ledger.WriteString("Merchant Txn ID,Amount,Ccy\n")
	for i := range n {
		amt := "10.00"
		if i == 4 {
			amt = "10.51"
		}
		fmt.Fprintf(&ledger, "cli-%05d,%s,USD\n", i, amt)
	}
	ledgerPath := filepath.Join(dir, "ledger.csv")
	if err := os.WriteFile(ledgerPath, []byte(ledger.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	summaries, exports := map[string]string{}, map[string]string{}
	for _, backend := range []string{"postgres", "duckdb"} {
		ts := cliSandbox(t, n)
		vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}
		loc := filepath.Join(t.TempDir(), "journal.duckdb")
		if backend == "postgres" {
			loc = url
			vars["PAYBATCH_JOURNAL_URL"] = url
		}
		args := []string{"submit", "--kind", "refund", "--poll-deadline", "30s", file}
		if backend == "duckdb" {
			args = append(args, "--journal", loc)
		}
		out, errs, code := runCLI(t, vars, args...)
		if code != exitExceptions || !strings.Contains(out, "final     29") || !strings.Contains(out, "declined  1") {
			t.Fatalf("%s: submit exit %d (want 1: one decline)\n%s\n%s", backend, code, out, errs)
		}
		if got := len(ts.Server.Operations()); got != n {
			t.Errorf("%s: %d operations executed, want %d", backend, got, n)
		}
		// Again: nothing new is sent.
		before := ts.Server.Stats()["requests"]
		if out, _, code = runCLI(t, vars, args...); code != exitExceptions || !strings.Contains(out, "0 new, 30 already finished") {
			t.Errorf("%s: re-run exit %d:\n%s", backend, code, out)
		}
		if d := ts.Server.Stats()["requests"] - before; d != 0 {
			t.Errorf("%s: re-run made %d requests", backend, d)
		}
		out, errs, code = runCLI(t, vars, "status", "--journal", loc, "--poll-deadline", "0")
		if code != exitExceptions || !strings.Contains(out, "cli-00004") {
			t.Errorf("%s: status exit %d\n%s\n%s", backend, code, out, errs)
		}
		js := filepath.Join(t.TempDir(), "summary.json")
		out, errs, code = runCLI(t, vars, "reconcile", "--journal", loc, "--ledger", ledgerPath, "--json", js)
		if code != exitOK && code != exitExceptions {
			t.Fatalf("%s: reconcile exit %d\n%s\n%s", backend, code, out, errs)
		}
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		summaries[backend] = categoriesOf(t, b)

		// journal migrate | check | export
		if out, errs, code = runCLI(t, vars, "journal", "migrate", "--journal", loc); code != exitOK || !strings.Contains(out, "schema version") {
			t.Errorf("%s: journal migrate exit %d\n%s\n%s", backend, code, out, errs)
		}
		if out, errs, code = runCLI(t, vars, "journal", "check", "--journal", loc); code != exitOK || !strings.Contains(out, "30 rows") {
			t.Errorf("%s: journal check exit %d\n%s\n%s", backend, code, out, errs)
		}
		pq := filepath.Join(t.TempDir(), "journal.parquet")
		if out, errs, code = runCLI(t, vars, "journal", "export", "--journal", loc, "--out", pq); code != exitOK {
			t.Fatalf("%s: journal export exit %d\n%s\n%s", backend, code, out, errs)
		}
		exports[backend] = parquetDump(t, pq)
	}
	if exports["postgres"] != exports["duckdb"] || !strings.Contains(exports["postgres"], "cli-00004 1051 USD declined") {
		t.Errorf("journal exports differ:\npostgres %s\nduckdb   %s", exports["postgres"], exports["duckdb"])
	}
	if summaries["postgres"] != summaries["duckdb"] {
		t.Errorf("reconciliation differs:\npostgres %s\nduckdb   %s", summaries["postgres"], summaries["duckdb"])
	}
	if !strings.Contains(summaries["postgres"], `"matched"`) {
		t.Errorf("nothing matched: %s", summaries["postgres"])
	}
}

// A password in the URL is refused before anything is read or sent.
func TestPostgresJournalPasswordInURL(t *testing.T) {
	dir := t.TempDir()
	file := refundCSV(t, dir, 2, nil)
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: "http://127.0.0.1:1"}
	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--journal", "postgres://pb:hunter2@127.0.0.1:1/j", file)
	if code != exitUsage || !strings.Contains(errs, "PGPASSWORD") || strings.Contains(out+errs, "hunter2") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

// categoriesOf is the summary's categories (counts and exact totals), as
// canonical JSON.
func categoriesOf(t *testing.T, summary []byte) string {
	t.Helper()
	var s struct {
		Categories map[string]any `json:"categories"`
	}
	if err := json.Unmarshal(summary, &s); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.Categories)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parquetDump renders an exported journal's stable columns, by id.
func parquetDump(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT merchant_transaction_id, amount_minor, currency, state, outcome, source_row
		FROM read_parquet(` + sqlLiteral(path) + `) ORDER BY merchant_transaction_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, cur, st, oc string
		var amt, row int64
		if err := rows.Scan(&id, &amt, &cur, &st, &oc, &row); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, id, amt, cur, st, oc, row)
	}
	return b.String()
}
