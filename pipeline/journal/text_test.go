package journal

import (
	"context"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestTextThatIsNotUTF8IsStored is the reproduction of a run stopped by
// a provider's error page cut inside a character: "journal: commit: …
// NOT NULL constraint failed: journal_events.problem" (DuckDB's appender
// turns text that is not UTF-8 into NULL). Logged first while paced, the
// same change would have stopped every later open at its replay. The text
// is stored with U+FFFD for the bytes that are not UTF-8, paced or not.
func TestTextThatIsNotUTF8IsStored(t *testing.T) {
	for _, linger := range []time.Duration{0, time.Millisecond} {
		t.Run(linger.String(), func(t *testing.T) {
			ctx := context.Background()
			j, row, at := pacedJournal(t, 2)
			j.SetLinger(linger)
			r := row(0)
			r.State, r.Problem, r.ProviderStatus, r.UpdatedAt = paybatch.StateFailed, "HTTP 502: <p>caf\xc3", "\xff", at
			if err := j.Save(r); err != nil {
				t.Fatal(err)
			}
			if err := j.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rows, err := j.Rows(ctx, Query{MerchantTxID: r.MerchantTxID})
			if err != nil || len(rows) != 1 {
				t.Fatalf("%d rows, %v", len(rows), err)
			}
			if got := rows[0]; got.Problem != "HTTP 502: <p>caf\uFFFD" || got.ProviderStatus != "\uFFFD" || got.State != paybatch.StateFailed {
				t.Fatalf("stored %q / %q / %s", got.Problem, got.ProviderStatus, got.State)
			}
		})
	}
}
