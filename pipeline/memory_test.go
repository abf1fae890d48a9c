//go:build !race

// The race pass leaves this file out: it submits 200k rows, and what it
// measures is DuckDB's memory, which the race detector does not see.

package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// TestLargeSubmitStaysInsideMemoryLimit is the reproduction of the 1M-row
// submit that failed mid-send at a 64 MB memory_limit ("journal: read: Out
// of Memory Error … 60.9 MiB/61.0 MiB used", #19): the run's state changes,
// appended to journal_events, stay in DuckDB's memory until a checkpoint,
// and the journal checkpointed only in Flush, after the send phase. 200k
// rows at 64 MB stand in for the 1M: before the run's checkpoints (between
// pages, and between chunks of the ingest) this failed ("journal: fold: Out
// of Memory Error: failed to pin block of size 256.0 KiB (60.9 MiB/61.0 MiB
// used)", main at 6db0e7f, 03:07 UTC 2026-12-04).
func TestLargeSubmitStaysInsideMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("submits 200k rows")
	}
	const n, limit = 200_000, "64MB"
	ctx := context.Background()
	// At a 64 MB limit the run checkpoints every 16 MB of WAL (the default
	// 32 MB suits the default 96 MB limit).
	j, err := journal.OpenDuckDB(ctx, t.TempDir()+"/j.duckdb", journal.Options{CheckpointWAL: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.SQL().ExecContext(ctx, "SET memory_limit = '"+limit+"'"); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Pacer: NewPacer(paybatch.Limits{}), Provider: paybatch.SmartRetry, PollInitial: time.Millisecond, PollDeadline: time.Hour}
	start := time.Now()
	res, err := Submit(ctx, j, nullProvider{}, genRefunds(n), cfg)
	if err != nil {
		t.Fatalf("submit of %d rows at memory_limit %s: %v", n, limit, err)
	}
	if res.States[paybatch.StateFinal] != n {
		t.Fatalf("%v, want %d final", res.States, n)
	}
	t.Logf("%d rows in %v", n, time.Since(start))
}
