package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestFoldInPieces: a fold applies the recorded changes foldEvents at a
// time (so that its join holds a piece of them, not all: a 1M-row poll
// failed at a fold's hash table at the default 128 MB memory_limit, #19);
// whatever the pieces, each row ends with its latest change and no change
// is left unfolded. Each row's two changes fall in different pieces here,
// and the pieces' size does not divide their number.
func TestFoldInPieces(t *testing.T) {
	const rows = 200
	for _, piece := range []int64{3, 7, rows, 2 * rows, foldEvents} {
		t.Run(fmt.Sprint(piece), func(t *testing.T) {
			ctx := context.Background()
			j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{foldEvents: piece})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			at := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
			row := ingestRefunds(ctx, t, j, rows, "fold", at)
			for _, st := range []paybatch.State{paybatch.StateSending, paybatch.StateFinal} {
				for i := range rows {
					r := row(i)
					r.State, r.Attempts, r.UpdatedAt = st, 1, at.Add(time.Second)
					if st == paybatch.StateFinal {
						r.Outcome, r.ProviderID = paybatch.OutcomeSucceeded, fmt.Sprintf("TX-%d", i)
					}
					if err := j.SaveLater(r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := j.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			var final, left int
			err = j.db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE state = 'final' AND outcome = 'succeeded'
				AND provider_id = 'TX-' || (source_row - 2)), (SELECT count(*) FROM journal_events) FROM journal`).Scan(&final, &left)
			if err != nil {
				t.Fatal(err)
			}
			if final != rows || left != 0 {
				t.Fatalf("%d of %d rows carry their latest change, %d changes left unfolded", final, rows, left)
			}
		})
	}
}
