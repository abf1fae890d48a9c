package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, env{stdout: &out, stderr: &errb})
	if err != nil {
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), exitCode(err)
}

func TestReconcileCommand(t *testing.T) {
	const td = "../../reconcile/testdata/"
	dir := t.TempDir()

	t.Run("exceptions exit 1 with the JSON summary", func(t *testing.T) {
		js := filepath.Join(dir, "summary.json")
		out, errs, code := runCmd(t, "reconcile", "--results", td+"results.csv", "--ledger", td+"ledger.csv",
			"--json", js, "--parquet", filepath.Join(dir, "pq"))
		if code != exitExceptions {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
		}
		for _, w := range []string{"Reconciled 16 ids: 3 matched", "amount_mismatch", "USD 219.99", "difference (ledger - voids - provider)"} {
			if !strings.Contains(out, w) {
				t.Errorf("table lacks %q:\n%s", w, out)
			}
		}
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var sum paybatch.Summary
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		if got := sum.Categories[paybatch.CatMatched].Totals["KWD"].String(); got != "12.000" {
			t.Errorf("matched KWD total %q in JSON", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "pq", "matched.parquet")); err != nil {
			t.Error(err)
		}
	})
	t.Run("all matched exits 0; --json - owns stdout", func(t *testing.T) {
		l := filepath.Join(dir, "l.csv")
		p := filepath.Join(dir, "p.csv")
		os.WriteFile(l, []byte("Reference,Amount,Ccy\nA,10.00,USD\nB,5,JPY\n"), 0o644)
		os.WriteFile(p, []byte("merchant_transaction_id,amount,currency,status\nA,10.01,USD,APPROVED\nB,5,JPY,successful\n"), 0o644)
		out, errs, code := runCmd(t, "reconcile", "--results", p, "--ledger", l, "--tolerance", "0.01", "--json", "-")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, out)
		}
		if m["match_rate"] != 1.0 || !strings.Contains(errs, "matched") {
			t.Errorf("match_rate %v; stderr %s", m["match_rate"], errs)
		}
	})
	t.Run("bad input exits 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"reconcile", "--ledger", td + "ledger.csv"},
			{"reconcile", "--results", td + "results.csv", "--journal", "x", "--ledger", td + "ledger.csv"},
			{"reconcile", "--journal", td + "results.csv", "--ledger", td + "ledger.csv"},
			{"reconcile", "--results", td + "results.csv", "--ledger", td + "journal.csv"},
			{"reconcile", "--results", td + "results.csv", "--ledger", td + "ledger.csv", "--tolerance", "-1"},
		} {
			_, errs, code := runCmd(t, args...)
			if code != exitUsage {
				t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
			}
		}
	})
}
