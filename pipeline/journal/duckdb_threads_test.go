package journal

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestJournalThreads: DuckDB runs a small journal's queries, and a paced
// writer's commits, on one thread; a large journal's (an input of more than
// a chunk, or a journal reopened with smallJournalRows rows) on DuckDB's
// default, which folds and checkpoints get back as soon as the writer
// stops. What the journal believes is what DuckDB has.
func TestJournalThreads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { j.Close() }()
	check := func(step string, want int) {
		t.Helper()
		var got int
		if err := j.db.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want || j.threadCount() != want {
			t.Fatalf("%s: DuckDB runs %d threads (the journal says %d), want %d", step, got, j.threadCount(), want)
		}
	}
	full := j.threads.full
	if full < 2 {
		t.Skipf("DuckDB's default is %d thread here: nothing to switch", full)
	}
	check("new journal", 1)

	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	usd := paybatch.MustCurrency("USD")
	row := func(i int) *Row {
		id := fmt.Sprintf("RF-%07d", i)
		return &Row{Key: "pb1-th-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
			Account: "ABC123", MerchantTxID: id, Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i%5000)},
			BodySHA256: "h-" + id, State: paybatch.StatePending, Source: paybatch.Source{File: "th.csv", Row: i + 2},
			CreatedAt: at, UpdatedAt: at, Method: "POST", Path: "/v1/payments/refund/ABC123",
			Body: []byte(`{}`), Terminal: "ABC123", TransactionRef: "TXS" + id, OrderRef: "ORS" + id}
	}
	input := func(from, to int) iter.Seq2[*Row, error] {
		return func(yield func(*Row, error) bool) {
			for i := from; i < to; i++ {
				if !yield(row(i), nil) {
					return
				}
			}
		}
	}
	save := func(step string, n int) {
		t.Helper()
		for i := range n {
			r := row(i)
			r.State, r.Attempts = paybatch.StateSending, 1
			if err := j.Save(r); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
	}

	// A small batch: one thread throughout, paced or not.
	if _, err := j.Ingest(ctx, input(0, 100), at); err != nil {
		t.Fatal(err)
	}
	check("small ingest", 1)
	j.SetLinger(time.Millisecond)
	save("paced writer, small journal", 3)
	check("paced writer, small journal", 1)
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("small journal flushed", 1)

	// An input of more than a chunk makes the journal large: the default,
	// except while the writer is paced.
	if _, err := j.Ingest(ctx, input(0, chunkRows+1), at); err != nil {
		t.Fatal(err)
	}
	check("large ingest", full)
	save("paced writer, large journal", 3)
	check("paced writer, large journal", 1)
	j.SetLinger(0)
	check("writer no longer paced", full)
	j.SetLinger(time.Millisecond)
	check("writer paced again", 1)
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("flushed: the fold's threads", full)
	j.SetLinger(0)

	// Reopened, a journal of smallJournalRows rows or more is large.
	if _, err := j.Ingest(ctx, input(chunkRows+1, smallJournalRows), at); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// A journal found large when it is opened calls Options.Large once.
	calls := 0
	if j, err = OpenDuckDB(ctx, path, Options{Large: func() { calls++ }}); err != nil {
		t.Fatal(err)
	}
	check("large journal reopened", full)
	if calls != 1 {
		t.Fatalf("large journal reopened: Large called %d times, want 1", calls)
	}
}

// threadCount is the number of threads the journal believes DuckDB runs its
// queries on now.
func (j *DuckDB) threadCount() int {
	j.threads.mu.Lock()
	defer j.threads.mu.Unlock()
	return j.threads.cur
}

// TestSmallJournalStringsWithoutFSST: a small journal's checkpoint stores
// its strings without FSST (storageSQL), a large journal's with DuckDB's
// default — which does choose FSST for these rows, so the first check can
// fail — and a journal reopened small is small again.
func TestSmallJournalStringsWithoutFSST(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	// journal ingests rows rows (benchRows) into a new journal and closes
	// it, which checkpoints.
	journal := func(rows int) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "j.duckdb")
		j, err := OpenDuckDB(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Ingest(ctx, benchRows(rows, at), at); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// storage opens the journal at path and returns the journal table's
	// columns with an FSST segment, and the setting the open put in force.
	storage := func(path string) (fsst []string, disabled string) {
		t.Helper()
		j, err := OpenDuckDB(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if err := j.db.QueryRowContext(ctx, `SELECT current_setting('disabled_compression_methods')`).Scan(&disabled); err != nil {
			t.Fatal(err)
		}
		rs, err := j.db.QueryContext(ctx, `SELECT DISTINCT column_name FROM pragma_storage_info('journal') WHERE compression = 'FSST' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var c string
			if err := rs.Scan(&c); err != nil {
				t.Fatal(err)
			}
			fsst = append(fsst, c)
		}
		return fsst, disabled
	}

	if cols, _ := storage(journal(chunkRows + 1)); len(cols) == 0 { // more than a chunk: large
		t.Fatal("a large journal has no FSST column: DuckDB's default did not choose FSST for these rows, so the small journal's check below proves nothing")
	}
	cols, disabled := storage(journal(3000))
	if len(cols) > 0 {
		t.Fatalf("a small journal's checkpoint stored %v with FSST", cols)
	}
	if !strings.EqualFold(disabled, "fsst") {
		t.Fatalf("a small journal reopened: disabled_compression_methods = %q, want fsst", disabled)
	}
}
