package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// TestSubmitRedriveRefusedRows: a row the provider refused for a reason
// fixed outside the row is sent again only when asked (--redrive REASON),
// under its own idempotency key: to the same account within the provider's
// 24 h window the stored refusal comes back (and submit says so, nothing
// executes); with the cause fixed (here: the right account, which has the
// transaction) it executes exactly once, and never again.
func TestSubmitRedriveRefusedRows(t *testing.T) {
	dir := t.TempDir()
	batch := filepath.Join(dir, "refunds.csv")
	writeFile(t, batch, "Terminal,Transaction Reference ID,Order Reference ID,Merchant Txn ID,Amount,Currency\n"+
		"ABC123,TXS00099,ORS00099,RF-3001,5.00,USD\n"+ // unknown to the first account
		"ABC123,TXS00002,ORS00002,RF-3002,10.00,USD\n")
	journal := filepath.Join(dir, "journal.duckdb")
	wrong := demoSandbox(t)
	right := sandboxWith(t, srsandbox.TransactionFixture{TransactionID: "TXS00099", OrderID: "ORS00099", Terminal: "ABC123",
		Type: "sale", Amount: "20.00", Currency: "USD"})
	submit := func(url string, extra ...string) (string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		getenv := func(k string) string {
			return map[string]string{"SMARTRETRY_API_KEY": "sr_test_key", "SMARTRETRY_BASE_URL": url}[k]
		}
		args := append([]string{"submit", "--kind", "refund", "--journal", journal, "--poll-deadline", "0"}, extra...)
		err := run(context.Background(), append(args, batch), env{stdout: &out, stderr: &errb, getenv: getenv})
		if err != nil {
			errb.WriteString(err.Error())
		}
		return out.String() + errb.String(), exitCode(err)
	}
	executed := func(ts *sandboxtest.Server, id string) int {
		n := 0
		for _, op := range ts.Server.Operations() {
			if op.Reference == id {
				n++
			}
		}
		return n
	}

	if out, code := submit(wrong.URL); code != exitExceptions {
		t.Fatalf("first submit: exit %d, want 1 (one refusal)\n%s", code, out)
	}
	if out, code := submit(wrong.URL); code != exitExceptions || executed(wrong, "RF-3001") != 0 || executed(wrong, "RF-3002") != 1 {
		t.Fatalf("a refused row is final without --redrive: exit %d, executed %d/%d\n%s", code, executed(wrong, "RF-3001"), executed(wrong, "RF-3002"), out)
	}
	out, code := submit(wrong.URL, "--redrive", "TRANSACTION_NOT_FOUND")
	if code != exitExceptions || !strings.Contains(out, "re-driving 1 refused row") || !strings.Contains(out, "refused again") || !strings.Contains(out, "24 h") {
		t.Fatalf("re-drive to the same account within 24 h: exit %d\n%s", code, out)
	}
	if n := executed(wrong, "RF-3001"); n != 0 {
		t.Fatalf("the replayed refusal executed RF-3001 %d times", n)
	}
	if out, code := submit(wrong.URL, "--redrive", "IDEMPOTENCY_CONFLICT"); code != exitUsage || !strings.Contains(out, "cannot be re-driven") {
		t.Errorf("--redrive IDEMPOTENCY_CONFLICT: exit %d\n%s", code, out)
	}

	// The cause fixed: the right account's endpoint.
	if out, code := submit(right.URL, "--redrive", "TRANSACTION_NOT_FOUND"); code != exitOK || executed(right, "RF-3001") != 1 {
		t.Fatalf("re-drive with the cause fixed: exit %d, RF-3001 executed %d times, want 0 and once\n%s", code, executed(right, "RF-3001"), out)
	}
	if out, code := submit(right.URL, "--redrive-rejected"); code != exitOK || !strings.Contains(out, "re-driving 0 refused row") {
		t.Errorf("nothing left to re-drive: exit %d\n%s", code, out)
	}
	if executed(right, "RF-3001") != 1 || executed(right, "RF-3002") != 0 || executed(wrong, "RF-3002") != 1 {
		t.Errorf("executions: right RF-3001 %d, RF-3002 %d; wrong RF-3002 %d — want 1, 0, 1",
			executed(right, "RF-3001"), executed(right, "RF-3002"), executed(wrong, "RF-3002"))
	}
}

// sandboxWith is the demo sandbox with extra SmartRetry transactions.
func sandboxWith(t *testing.T, extra ...srsandbox.TransactionFixture) *sandboxtest.Server {
	t.Helper()
	fx := demoFixtures(t)
	fx.SmartRetry.Transactions = append(fx.SmartRetry.Transactions, extra...)
	return sandboxtest.NewServer(t, sandbox.Options{Fixtures: fx, Seed: 7, SmartRetry: srsandbox.SandboxConfig{SettleAfter: 100 * time.Millisecond}})
}
