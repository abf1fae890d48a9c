package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// On a PostgreSQL journal, `paybatch status` and `paybatch history` answer
// while a `paybatch run` (the real process) is in the middle of writing it:
// the run holds its credential's lease and has journaled intent for a
// request whose answer the gate holds. Afterwards the run finishes, its
// report covers its own input (scoped as on DuckDB), history lists it
// finished, and every row was executed exactly once.
func TestPostgresStatusAndHistoryWhileRunWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	url := pgtest.URL(t)
	jobPath, root := exampleJob(t, [2]string{"# journal: ../paybatch-out/journal.duckdb", "journal: " + url})
	gate := newGate(t, demoSandbox(t))
	gate.holdPOST.Store(3) // the 3rd payment request executes; its answer waits for release
	env := []string{"PAYBATCH_TEST_MAIN=1", "SMARTRETRY_API_KEY=sr_test_key", "SMARTRETRY_BASE_URL=" + gate.URL}

	cmd := exec.Command(os.Args[0], "run", "--config", jobPath)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case <-gate.held:
	case err := <-exited:
		t.Fatalf("run ended (%v) before its 3rd request\n%s\n%s", err, out.String(), errb.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("run never sent its 3rd request\n%s", out.String())
	}

	// The run is mid-submit: both commands answer, without waiting for it.
	vars := map[string]string{"PAYBATCH_JOURNAL_URL": url}
	start := time.Now()
	sout, serr, code := runCLI(t, vars, "status", "--poll-deadline", "0")
	if code != exitResumable { // rows unfinished: the run is not done
		t.Fatalf("status while the run writes: exit %d, want 3 (rows in flight)\n%s\n%s", code, sout, serr)
	}
	if !strings.Contains(sout, "sending") {
		t.Errorf("status while the run writes shows no row in flight:\n%s", sout)
	}
	hout, herr, code := runCLI(t, vars, "history", "--json")
	if code != exitOK {
		t.Fatalf("history while the run writes: exit %d\n%s\n%s", code, hout, herr)
	}
	var runs []job.PastRun
	if err := json.Unmarshal([]byte(hout), &runs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, hout)
	}
	if len(runs) != 1 || runs[0].State == "finished" || runs[0].Rows == 0 {
		t.Fatalf("history while the run writes: want one unfinished run with its inputs, got\n%s", hout)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("status and history took %v while the run wrote", d)
	}

	gate.release()
	var err error
	select {
	case err = <-exited:
	case <-time.After(120 * time.Second):
		t.Fatalf("run did not finish after the release\n%s", out.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitExceptions {
		t.Fatalf("run: %v, want exit 1 (the demo has exceptions)\n%s\n%s", err, out.String(), errb.String())
	}
	exited <- nil // for the cleanup

	hout, herr, code = runCLI(t, vars, "history", "--json")
	runs = nil
	if code != exitOK || json.Unmarshal([]byte(hout), &runs) != nil || len(runs) != 1 || runs[0].State != "finished" || runs[0].Report == "" {
		t.Fatalf("history after the run: exit %d, want one finished run with its report\n%s\n%s", code, hout, herr)
	}
	if runs[0].IDs == nil || *runs[0].IDs == 0 {
		t.Errorf("history after the run has no reconciled ids:\n%s", hout)
	}
	if _, err := os.Stat(runs[0].Report); err != nil {
		t.Errorf("the run's report: %v", err)
	}
	if d, _ := filepath.Glob(filepath.Join(root, "paybatch-out", "report-*.xlsx")); len(d) != 1 {
		t.Errorf("dated reports %v, want one", d)
	}
	perID := map[string]int{}
	for _, op := range gate.ts.Server.Operations() {
		perID[op.Reference]++
	}
	for _, id := range []string{"RF-1001", "RF-1002", "RF-1003", "RF-1004", "RF-1005", "RF-1006", "RF-1007", "RF-1008"} {
		if perID[id] != 1 {
			t.Errorf("%s executed %d times, want exactly once (%v)", id, perID[id], perID)
		}
	}
}
