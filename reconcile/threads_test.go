package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestOneThreadForRows: the rows pass, Rows and the exports run DuckDB on
// one thread (threads.go) — also side by side — and leave the setting as
// they found it; Run without Options.Rows (reconcile --json) does not touch it.
func TestOneThreadForRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledger, results := filepath.Join(dir, "l.csv"), filepath.Join(dir, "r.csv")
	os.WriteFile(ledger, []byte("merchant_transaction_id,amount,currency\nA,1.00,USD\nB,2.00,USD\nC,3.00,USD\n"), 0o644)
	os.WriteFile(results, []byte("merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\nB,2.50,USD,APPROVED\n"), 0o644)
	for _, rows := range []bool{false, true} {
		r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "256MB", Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		threads := func() int64 {
			var n int64
			if err := r.db.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if _, err := r.db.ExecContext(ctx, `SET threads = 3`); err != nil {
			t.Fatal(err)
		}
		loadRun(t, r, ledger, "", results, false)
		if r.ranges == nil && rows {
			t.Fatal("Run with Rows did not take the rows pass")
		}
		if got := threads(); got != 3 {
			t.Fatalf("Rows=%v: threads %d after Run, want 3 (as it was)", rows, got)
		}
		n := 0
		for _, err := range r.Rows(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if got := threads(); got != 1 {
				t.Fatalf("threads %d while Rows reads, want 1", got)
			}
			if n++; n == 1 { // an export beside the rows: still one thread after it
				if _, err := r.ExportParquet(ctx, filepath.Join(t.TempDir(), "pq")); err != nil {
					t.Fatal(err)
				}
				if got := threads(); got != 1 {
					t.Fatalf("threads %d after an export beside Rows, want 1 until Rows ends", got)
				}
			}
		}
		if n != 3 {
			t.Fatalf("%d rows, want 3", n)
		}
		if _, err := r.ExportCSV(ctx, filepath.Join(t.TempDir(), "csv"), nil); err != nil {
			t.Fatal(err)
		}
		if got := threads(); got != 3 {
			t.Fatalf("threads %d after Rows and the exports, want 3 (as it was)", got)
		}
		r.Close()
	}
}

// loadLeavesCore: DuckDB's default threads for the rows pass only when the
// load average leaves a core idle besides the pass's own.
func TestLoadLeavesCore(t *testing.T) {
	for _, c := range []struct {
		loadavg string
		cores   int
		want    bool
	}{
		{"0.10 0.20 0.30 1/200 1234\n", 2, true},
		{"1.49 1.00 1.00 2/200 1234\n", 2, true},
		{"1.50 1.00 1.00 2/200 1234\n", 2, false},
		{"5.12 7.97 5.22 9/300 999\n", 2, false},
		{"0.00 0.00 0.00 1/100 1\n", 1, false}, // one core: nothing to spare
		{"3.40 3.00 3.00 4/100 1\n", 4, true},
		{"", 2, false},
		{"busy 1 1", 2, false},
	} {
		if got := loadLeavesCore(c.loadavg, c.cores); got != c.want {
			t.Errorf("loadLeavesCore(%q, %d) = %v, want %v", c.loadavg, c.cores, got, c.want)
		}
	}
}
