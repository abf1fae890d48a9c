package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRunStoppedSaysContext: a Run its context stops returns the context's
// error, wherever the stop lands — not DuckDB's "INTERRUPT Error:
// Interrupted!" of the statement it stopped (currencyNumbers' query, seen
// failing TestRowsPassCopyCancel under -race). The stops are spread over
// Run's first 4 ms, where it runs its short statements; without the fix it
// failed 2 runs in 3 (1–4 of the 40 stops). Each stop waits ≈ 0.3 s for
// DuckDB to give the statement up: ≈ 14 s of wall, 0.3 cpu-s.
func TestRunStoppedSaysContext(t *testing.T) {
	ledger, results := writeEURPair(t, t.TempDir(), "S", 20_000, nil)
	ctx := context.Background()
	r := MustOpen(t, "")
	if err := r.LoadLedger(ctx, ledger, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, results, ""); err != nil {
		t.Fatal(err)
	}
	for after := time.Duration(0); after < 4*time.Millisecond; after += 100 * time.Microsecond {
		cctx, cancel := context.WithTimeout(ctx, after)
		_, err := r.Run(cctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stopped after %v: %v, want the context's error", after, err)
		}
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatalf("a Run after the stopped ones: %v", err)
	}
}
