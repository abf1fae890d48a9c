package journal

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestLargeRunStaysInsideMemoryLimit is the reproduction of the 1M-row
// submit that ran out of memory at its final fold once DuckDB stopped
// checkpointing on its own (2c683fd): the appended state changes and the
// fold's updates of rows never checkpointed stay pinned in DuckDB's memory,
// so a run's memory grew with its rows until memory_limit ("failed to pin
// block"). Flush now folds the WAL into the file (under the protected copy)
// before and after the fold, so a run far larger than memory_limit folds.
func TestLargeRunStaysInsideMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~100 MB")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// A small memory_limit stands in for a run ten times larger.
	if _, err := j.SQL().ExecContext(ctx, `SET memory_limit = '64MB'`); err != nil {
		t.Fatal(err)
	}
	const rows = 200_000
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	usd := paybatch.MustCurrency("USD")
	var src iter.Seq2[*Row, error] = func(yield func(*Row, error) bool) {
		for i := range rows {
			id := fmt.Sprintf("RF-%07d", i)
			r := &Row{Key: "pb1-mem-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
				Account: "ABC123", MerchantTxID: id, Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i%5000)},
				BodySHA256: "h-" + id, State: paybatch.StatePending, Source: paybatch.Source{File: "mem.csv", Row: i + 2},
				CreatedAt: at, UpdatedAt: at, Method: "POST", Path: "/v1/payments/refund/ABC123",
				Body: []byte(`{}`), Terminal: "ABC123", TransactionRef: "TXS" + id, OrderRef: "ORS" + id}
			if !yield(r, nil) {
				return
			}
		}
	}
	if _, err := j.Ingest(ctx, src, at); err != nil {
		t.Fatal(err)
	}
	// Six state changes per row, as a submit and a poll journal them.
	for seq, state := range []string{"sending", "sent", "polled", "polled", "polled", "final"} {
		if _, err := j.SQL().ExecContext(ctx, `INSERT INTO journal_events BY NAME
			SELECT ? * 10000000 + row_number() OVER () AS seq, key, ? AS state, 'succeeded' AS outcome, 'SETTLED' AS provider_status,
				'TX' || merchant_transaction_id AS provider_id, '' AS order_id, '' AS reason_code, '' AS problem, 200 AS http_status,
				1 AS attempts, updated_at, updated_at AS sent_at, amount_minor AS provider_amount_minor, false AS replayed, 0 AS polls
			FROM journal`, seq+1, state); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	var final int
	if err := j.SQL().QueryRowContext(ctx, `SELECT count(*) FROM journal WHERE state = 'final'`).Scan(&final); err != nil {
		t.Fatal(err)
	}
	if final != rows {
		t.Fatalf("%d rows final, want %d", final, rows)
	}
}
