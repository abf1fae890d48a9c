package journal

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestCheckpointWhileProgressCounts: a run's progress goroutine counts the
// journal table (Publish) while the poll loop's Flush checkpoints it with
// the writer stopped. Both run at once on the journal's *sql.DB; the
// checkpoint must complete (the WAL folded into the file, the protected copy
// gone) and no count may fail. DuckDB checkpoints beside read transactions
// (only another write transaction makes a plain CHECKPOINT fail), and the
// published counts are guarded by pmu: run it under -race.
func TestCheckpointWhileProgressCounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rows := 20_000
	if testing.Short() {
		rows = 2_000
	}
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	row := ingestRefunds(ctx, t, j, rows, "ck", at)
	for round, st := range []paybatch.State{paybatch.StateSending, paybatch.StateAccepted, paybatch.StateFinal} {
		for i := range rows {
			r := row(i)
			r.State, r.Attempts, r.UpdatedAt = st, 1, at.Add(time.Duration(round+1)*time.Second)
			if err := j.SaveLater(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.stopWriter(); err != nil {
			t.Fatal(err)
		}
		if !needsCheckpoint(path, closeWAL) {
			t.Fatalf("round %d: no WAL to checkpoint", round)
		}
		var stop atomic.Bool
		var counted atomic.Int64
		var wg sync.WaitGroup
		for range 2 { // the progress goroutine, and a reader such as serve's
			wg.Go(func() {
				for !stop.Load() {
					j.pmu.Lock()
					j.counts = nil // as after a Flush: the next Publish recounts
					j.pmu.Unlock()
					if err := j.Publish(ctx, Progress{Phase: "poll", Total: rows}); err != nil {
						t.Errorf("round %d: publish during the checkpoint: %v", round, err)
						return
					}
					counted.Add(1)
				}
			})
		}
		for counted.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		err := j.checkpoint(ctx, closeWAL)
		stop.Store(true)
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: checkpoint beside the counts: %v", round, err)
		}
		if _, err := os.Stat(walPath(path)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("round %d: WAL still there after the checkpoint (%v)", round, err)
		}
		if _, err := os.Stat(checkpointCopy(path)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("round %d: protected copy left (%v)", round, err)
		}
		if err := j.fold(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM journal WHERE state = ?`, string(st)).Scan(&n); err != nil || n != rows {
			t.Fatalf("round %d: %d rows %s (%v), want %d", round, n, st, err, rows)
		}
	}
}
