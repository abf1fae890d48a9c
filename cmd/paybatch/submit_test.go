package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smartretry"
	"github.com/paybatch/paybatch/readers"
)

// refundCSV writes n refunds of fixture sales TXC00000… to a CSV file.
func refundCSV(t *testing.T, dir string, n int, edit func(i int) string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
	for i := range n {
		amount := "10.00"
		if edit != nil {
			if a := edit(i); a != "" {
				amount = a
			}
		}
		fmt.Fprintf(&b, "%s,TXC%05d,ORC%05d,cli-%05d,%s,USD\n", srsandbox.TestTerminal, i, i, i, amount)
	}
	p := filepath.Join(dir, "refunds.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func cliSandbox(t *testing.T, n int) *sandboxtest.Server {
	f := &sandbox.Fixtures{}
	for i := range n {
		f.SmartRetry.Transactions = append(f.SmartRetry.Transactions, srsandbox.TransactionFixture{
			TransactionID: fmt.Sprintf("TXC%05d", i), OrderID: fmt.Sprintf("ORC%05d", i), Terminal: srsandbox.TestTerminal,
			Type: smartretry.TypeSale, Amount: "100.00", Currency: "USD", Status: smartretry.StatusApproved})
	}
	return sandboxtest.NewServer(t, sandbox.Options{Seed: 1, Fixtures: f, Faults: "5xx=0.1,lost=0.05",
		SmartRetry: srsandbox.SandboxConfig{SettleAfter: 200 * time.Millisecond}})
}

func runCLI(t *testing.T, vars map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, env{stdout: &out, stderr: &errb,
		getenv: func(k string) string { return vars[k] }})
	if err != nil {
		errb.WriteString("paybatch: " + err.Error())
	}
	return out.String(), errb.String(), exitCode(err)
}

func TestSubmitCommandAgainstSandbox(t *testing.T) {
	const n = 30
	ts := cliSandbox(t, n)
	dir := t.TempDir()
	file := refundCSV(t, dir, n, func(i int) string {
		if i == 4 {
			return "10.51" // the sandbox declines amounts ending .51
		}
		return ""
	})
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}

	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--poll-deadline", "30s", file)
	if code != exitExceptions {
		t.Fatalf("exit %d (want 1: one decline)\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "final     29") || !strings.Contains(out, "declined  1") {
		t.Errorf("summary:\n%s", out)
	}
	if _, err := os.Stat(file + ".journal.duckdb"); err != nil {
		t.Errorf("journal not beside the input: %v", err)
	}
	if got := len(ts.Server.Operations()); got != n {
		t.Errorf("%d operations executed, want %d", got, n)
	}

	// Re-run: a no-op, also as JSON for scripts.
	before := ts.Server.Stats()["requests"]
	out, _, code = runCLI(t, vars, "submit", "--kind", "refund", file)
	if code != exitExceptions || !strings.Contains(out, "0 new, 30 already finished") {
		t.Errorf("re-run exit %d:\n%s", code, out)
	}
	out, _, _ = runCLI(t, vars, "submit", "--kind", "refund", "--json", file)
	var res struct {
		New         int                          `json:"new"`
		AlreadyDone int                          `json:"already_done"`
		States      map[string]int               `json:"states"`
		Totals      map[string]map[string]string `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("submit --json: %v\n%s", err, out)
	}
	if res.New != 0 || res.AlreadyDone != n || res.States["final"] != 29 || res.Totals["declined"]["USD"] != "10.51" {
		t.Errorf("submit --json = %+v", res)
	}
	if d := ts.Server.Stats()["requests"] - before; d != 0 {
		t.Errorf("re-run made %d requests", d)
	}

	// An edited amount: conflict, nothing sent.
	refundCSV(t, dir, n, func(i int) string {
		if i == 7 {
			return "12.00"
		}
		if i == 4 {
			return "10.51"
		}
		return ""
	})
	out, _, code = runCLI(t, vars, "submit", "--kind", "refund", file)
	if code != exitExceptions || !strings.Contains(out, "conflict: "+file+" row 9: merchant_transaction_id cli-00007") {
		t.Errorf("edited re-run exit %d:\n%s", code, out)
	}
	if d := ts.Server.Stats()["requests"] - before; d != 0 {
		t.Errorf("edited re-run made %d requests", d)
	}

	// status: no polling needed, JSON lists the decline.
	out, errs, code = runCLI(t, vars, "status", "--json", file)
	if code != exitExceptions {
		t.Fatalf("status exit %d\n%s\n%s", code, out, errs)
	}
	var st struct {
		Attention []statusRowJSON `json:"attention"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err, out)
	}
	if len(st.Attention) != 1 || st.Attention[0].MerchantTxID != "cli-00004" || st.Attention[0].State != "declined" {
		t.Errorf("attention = %+v", st.Attention)
	}
}

func TestSubmitNoPollThenStatusPolls(t *testing.T) {
	const n = 10
	ts := cliSandbox(t, n)
	file := refundCSV(t, t.TempDir(), n, nil)
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}
	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--no-poll", file)
	if code != exitOK || !strings.Contains(out, "accepted  10") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	time.Sleep(250 * time.Millisecond) // the sandbox settles after 200 ms
	out, errs, code = runCLI(t, vars, "status", "--poll-deadline", "20s", file)
	if code != exitOK || !strings.Contains(out, "final") || strings.Contains(out, "accepted") {
		t.Fatalf("status exit %d\n%s\n%s", code, out, errs)
	}
}

func TestSubmitRefusals(t *testing.T) {
	dir := t.TempDir()
	file := refundCSV(t, dir, 3, nil)
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n"+
		"ABC123,TXC00000,ORC00000,b-1,10.00,USD\nABC123,TXC00001,ORC00001,b-2,10.001,USD\n"), 0o600)
	key := map[string]string{envSmartRetryKey: "k"}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		code int
		want string
	}{
		{"secret flag", key, []string{"submit", "--kind", "refund", "--api-key", "sk_live_x", file}, exitUsage, "set SMARTRETRY_API_KEY"},
		{"token flag", key, []string{"submit", "--kind", "refund", "--token=abc", file}, exitUsage, "never taken from flags"},
		{"no key", nil, []string{"submit", "--kind", "refund", file}, exitUsage, "set SMARTRETRY_API_KEY"},
		{"plain http", map[string]string{envSmartRetryKey: "k", envSmartRetryURL: "http://api.example.com"}, []string{"submit", "--kind", "refund", file}, exitUsage, "plain http is refused"},
		{"bad rate", key, []string{"submit", "--kind", "refund", "--rate", "fast", file}, exitUsage, "--rate"},
		{"wrong provider", key, []string{"submit", "--kind", "refund", "--provider", "smarterpay", file}, exitUsage, "cannot execute"},
		{"rejected rows", key, []string{"submit", "--kind", "refund", bad}, exitUsage, "nothing was submitted"},
		{"dry run", nil, []string{"submit", "--kind", "refund", "--dry-run", "--rate", "2/1s", file}, exitOK, "USD         3 rows  total 30.00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLI(t, tc.vars, tc.args...)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.want, out, errs)
			}
			if strings.Contains(out+errs, "sk_live_x") || strings.Contains(out+errs, "abc") {
				t.Errorf("a secret was echoed: %s %s", out, errs)
			}
		})
	}
	if _, err := os.Stat(bad + ".journal.duckdb"); err == nil {
		t.Error("a journal was created for a rejected batch")
	}
}

func TestSubmitInterruptedThenResumed(t *testing.T) {
	const n = 30
	ts := cliSandbox(t, n)
	file := refundCSV(t, t.TempDir(), n, nil)
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}
	// SIGINT, as main wires it, once a few operations have executed (a
	// fixed timeout fired before the first send on a loaded machine).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil && len(ts.Server.Operations()) < 3 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	var out, errb bytes.Buffer
	err := run(ctx, []string{"submit", "--kind", "refund", "--rate", "20/1s", file},
		env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }})
	if code := exitCode(err); code != exitResumable || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("interrupted run: exit %d, %v\n%s", code, err, out.String())
	}
	if got := len(ts.Server.Operations()); got == 0 || got == n {
		t.Fatalf("%d operations executed before the interrupt; want some, not all", got)
	}
	out2, errs, code := runCLI(t, vars, "submit", "--kind", "refund", file)
	if code != exitOK {
		t.Fatalf("resume exit %d\n%s\n%s", code, out2, errs)
	}
	seen := map[string]int{}
	for _, op := range ts.Server.Operations() {
		seen[op.Reference]++
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids executed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s executed %d times", id, c)
		}
	}
}

func TestSubmitBadCredentialStopsResumable(t *testing.T) {
	ts := cliSandbox(t, 5)
	file := refundCSV(t, t.TempDir(), 5, nil)
	vars := map[string]string{envSmartRetryKey: "sr_wrong_key_123", envSmartRetryURL: ts.URL}
	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", file)
	if code != exitResumable || !strings.Contains(errs, "check SMARTRETRY_API_KEY") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, "sr_wrong_key_123") {
		t.Error("the API key was echoed")
	}
	vars[envSmartRetryKey] = srsandbox.TestAPIKey
	if out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", file); code != exitOK {
		t.Fatalf("resume exit %d\n%s\n%s", code, out, errs)
	}
	if got := len(ts.Server.Operations()); got != 5 {
		t.Errorf("%d operations", got)
	}
}

func TestSubmitAllowPartial(t *testing.T) {
	ts := cliSandbox(t, 5)
	file := refundCSV(t, t.TempDir(), 5, func(i int) string {
		if i == 2 {
			return "10.001" // too many decimals for USD
		}
		return ""
	})
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}
	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--allow-partial", file)
	if code != exitExceptions || !strings.Contains(out, "1 rejected by validation") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if got := len(ts.Server.Operations()); got != 4 {
		t.Errorf("%d operations, want the 4 valid rows", got)
	}
	// status lists the validation reject and exits 1 for it (#16 finding 8).
	out, _, code = runCLI(t, vars, "status", "--json", "--poll-deadline", "0", file)
	if !strings.Contains(out, `"state": "final"`) || !strings.Contains(out, `"row": 4`) || !strings.Contains(out, `"value": "10.001"`) ||
		code != exitExceptions {
		t.Errorf("status exit %d: %s", code, out)
	}
	j, err := journal.OpenDuckDB(context.Background(), file+".journal.duckdb", journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rejects, err := j.Rejects(context.Background())
	if err != nil || len(rejects) != 1 || rejects[0].Source.Row != 4 || rejects[0].Column != "amount" || rejects[0].Value != "10.001" {
		t.Errorf("rejects: %+v (%v)", rejects, err)
	}
	sum, err := readers.FileSHA256(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := j.InputProcessed(context.Background(), file, sum); err != nil || !done {
		t.Errorf("InputProcessed = %v, %v", done, err)
	}
	if done, _ := j.InputProcessed(context.Background(), file, "other"); done {
		t.Error("InputProcessed true for another hash")
	}
}
