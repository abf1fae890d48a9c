package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// TestStatusAndReconcileAfterKilledSubmit (#17, #16 finding 8): while a
// real `paybatch submit` process holds the journal, `status` shows its
// progress instead of refusing; after that process is SIGKILLed mid-send,
// `reconcile --journal` (which reads the journal read-only) sees the latest
// states — the state changes the killed run recorded in its change log and
// never folded — not the states the rows were journaled with.
func TestStatusAndReconcileAfterKilledSubmit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	const n = 40
	ts := cliSandbox(t, n)
	dir := t.TempDir()
	// Every third refund is declined (the sandbox declines amounts ending
	// .51): a decline is final at send time, so it differs from "pending"
	// in reconcile's categories.
	file := refundCSV(t, dir, n, func(i int) string {
		if i%3 == 0 {
			return "10.51"
		}
		return ""
	})
	var ledger strings.Builder
	ledger.WriteString("merchant_transaction_id,amount,currency,type\n")
	for i := range n {
		fmt.Fprintf(&ledger, "cli-%05d,10.00,USD,refund\n", i)
	}
	ledgerPath := filepath.Join(dir, "ledger.csv")
	if err := os.WriteFile(ledgerPath, []byte(ledger.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	jpath := file + ".journal.duckdb"
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}

	cmd := exec.Command(os.Args[0], "submit", "--kind", "refund", "--rate", "8/1s", "--poll-deadline", "0", file)
	cmd.Env = append(os.Environ(), "PAYBATCH_TEST_MAIN=1", envSmartRetryKey+"="+srsandbox.TestAPIKey, envSmartRetryURL+"="+ts.URL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			<-done
		}
	}()
	// waitUntil polls cond until it holds, failing when the run ends first
	// or 20 s pass.
	deadline := time.Now().Add(20 * time.Second)
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case err := <-done:
				killed = true
				t.Fatalf("submit ended before %s: %v\n%s", what, err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in 20 s (%d operations); stderr:\n%s", what, len(ts.Server.Operations()), stderr.String())
			}
		}
	}
	// Wait for the run's first progress snapshot and a few sends.
	waitUntil("progress published after 6 sends", func() bool {
		_, published, _ := journal.ReadProgress(jpath)
		return published && len(ts.Server.Operations()) >= 6
	})
	out, errs, code := runCLI(t, vars, "status", "--journal", jpath, "--poll-deadline", "0")
	if code != exitOK || !strings.Contains(out, "another paybatch run (pid") || !strings.Contains(out, "submit:") {
		t.Errorf("status while the run holds the journal: exit %d\n%s\n%s", code, out, errs)
	}
	// The answers are committed with the next commit group, not before
	// the next request leaves (SaveLater): on a loaded machine the first
	// sends' answers can still be queued when the sixth request has left.
	// Eight more sends at 8/s (≈ 1 s, ten lingers) let the early declines
	// commit before the kill, with 26 rows still to go.
	waitUntil("14 sends", func() bool { return len(ts.Server.Operations()) >= 14 })
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	killed = true
	executed := len(ts.Server.Operations())
	if executed >= n {
		t.Fatalf("the run finished (%d operations) before the kill", executed)
	}
	// Paced, the run committed its changes to its change log, not yet to
	// DuckDB: reconcile must bring them in before it reads.
	if _, err := os.Stat(jpath + ".changes"); err != nil {
		t.Fatalf("no change log beside the killed paced run's journal: %v", err)
	}

	out, errs, _ = runCLI(t, vars, "reconcile", "--journal", jpath, "--ledger", ledgerPath, "--json", "-")
	var sum struct {
		Categories map[paybatch.Category]struct {
			Count int `json:"count"`
		} `json:"categories"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("reconcile --json: %v\n%s\n%s", err, out, errs)
	}
	// The truth: the journal's latest states, read (and folded) through
	// the journal package after reconcile has read it.
	j, err := journal.OpenDuckDB(context.Background(), jpath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := j.Rows(context.Background(), journal.Query{})
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	declined, open := 0, 0
	for _, r := range rows {
		switch r.State {
		case paybatch.StateDeclined:
			declined++
		case paybatch.StatePending, paybatch.StateSending, paybatch.StateAccepted, paybatch.StateFailed:
			open++
		}
	}
	if declined == 0 {
		t.Fatalf("no decline recorded before the kill (%d operations executed): nothing to tell apart", executed)
	}
	got := sum.Categories
	if got[paybatch.CatStatusMismatch].Count != declined || got[paybatch.CatPending].Count != open {
		t.Errorf("reconcile after the kill: status_mismatch %d, pending %d; the journal's latest states: declined %d, unfinished %d\n%s",
			got[paybatch.CatStatusMismatch].Count, got[paybatch.CatPending].Count, declined, open, out)
	}
}

// TestDamagedJournalIsNamed (#16 finding 9): a truncated journal is named
// as damaged with what to do, by every command that opens it.
func TestDamagedJournalIsNamed(t *testing.T) {
	f, err := os.Open("../../pipeline/journal/testdata/v0.duckdb.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jpath := filepath.Join(dir, "journal.duckdb")
	if err := os.WriteFile(jpath, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(dir, "ledger.csv")
	os.WriteFile(ledger, []byte("merchant_transaction_id,amount,currency\nA,1.00,USD\n"), 0o600)
	for _, args := range [][]string{
		{"status", "--journal", jpath, "--poll-deadline", "0"},
		{"reconcile", "--journal", jpath, "--ledger", ledger},
	} {
		_, errs, code := runCLI(t, nil, args...)
		if code != exitUsage {
			t.Errorf("%s: exit %d, want %d", args[0], code, exitUsage)
		}
		for _, s := range []string{"journal " + jpath + " is damaged", "restore it from backup", "do not delete it"} {
			if !strings.Contains(errs, s) {
				t.Errorf("%s: stderr lacks %q:\n%s", args[0], s, errs)
			}
		}
	}
	if fi, err := os.Stat(jpath); err != nil || fi.Size() != int64(len(b)/2) {
		t.Errorf("the damaged journal was changed: %v", err)
	}
}

// TestJournalReadersRefusedWhileHeld: while another process holds the
// journal's lock with its DuckDB file closed — a run or serve reopening its
// database after a checkpoint — reconcile --journal and journal export are
// refused as locked (exit 4) instead of reading the file (they read it
// before: DuckDB's lock on the file is the only one they met); once the lock
// is released they read it.
func TestJournalReadersRefusedWhileHeld(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	jpath := filepath.Join(dir, "journal.duckdb")
	j, err := journal.OpenDuckDB(ctx, jpath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(dir, "ledger.csv")
	os.WriteFile(ledger, []byte("merchant_transaction_id,amount,currency\nA,1.00,USD\n"), 0o600)
	readers := [][]string{
		{"reconcile", "--journal", jpath, "--ledger", ledger, "--json", filepath.Join(dir, "summary.json")},
		{"journal", "export", "--journal", jpath, "--out", filepath.Join(dir, "journal.parquet")},
	}
	lk, err := journal.TakeLock(jpath) // the holder, its database closed
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range readers {
		if _, errs, code := runCLI(t, nil, args...); code != exitLocked {
			t.Errorf("%s while the journal is held: exit %d, want %d (locked)\n%s", args[0], code, exitLocked, errs)
		}
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	for _, args := range readers {
		if _, errs, code := runCLI(t, nil, args...); code != exitOK && code != exitExceptions {
			t.Errorf("%s with no holder: exit %d\n%s", args[0], code, errs)
		}
	}
}
