package journal

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestFreeLazily: inside FreeAtOnce, FreeLazily keeps freed pages for its
// decay until restored, then the decay is 0 again; a decay already as long
// is left alone (Linux, where DuckDB runs on jemalloc).
func TestFreeLazily(t *testing.T) {
	before, err := allocatorDecay()
	if err != nil {
		t.Fatal(err)
	}
	if before == decayUnknown {
		t.Skip("DuckDB does not run on jemalloc here")
	}
	atOnce, err := FreeAtOnce()
	if err != nil {
		t.Fatal(err)
	}
	defer atOnce()
	lazily, err := FreeLazily(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	during, _ := allocatorDecay()
	lazily()
	after, _ := allocatorDecay()
	if during != time.Second || after != 0 {
		t.Fatalf("decay while lazy %v, after %v; want 1s, then 0 again", during, after)
	}
	atOnce()
	restore, err := FreeLazily(time.Millisecond) // shorter than what is set: nothing to do
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := allocatorDecay(); got != before {
		t.Fatalf("decay %v after FreeLazily(1ms) on %v; want it left alone", got, before)
	}
	restore()
}

// TestLargeHook: Options.Large is not called while the journal is small,
// is called once an input fills an ingest chunk, and never again; a
// journal and WAL of largeJournalBytes count as large before they are
// opened.
func TestLargeHook(t *testing.T) {
	ctx := context.Background()
	calls := 0
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{ChunkRows: 20, Large: func() { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	check := func(step string, want int) {
		t.Helper()
		if calls != want {
			t.Fatalf("%s: Large called %d times, want %d", step, calls, want)
		}
	}
	check("small journal opened", 0)
	at := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	if _, err := j.Ingest(ctx, decayRows(0, 10, at), at); err != nil {
		t.Fatal(err)
	}
	check("small input ingested", 0)
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("small journal flushed", 0)
	if _, err := j.Ingest(ctx, decayRows(10, 31, at), at); err != nil {
		t.Fatal(err)
	}
	check("an input of more than a chunk", 1)
	if _, err := j.Ingest(ctx, decayRows(31, 80, at), at); err != nil {
		t.Fatal(err)
	}
	check("another input of more than a chunk", 1)

	dir := t.TempDir()
	size := func(p string, n int64) {
		t.Helper()
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(n); err != nil { // sparse: costs nothing
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "big.duckdb")
	if largeOnDisk(p) {
		t.Fatal("a journal that does not exist is large")
	}
	size(p, largeJournalBytes/2)
	if largeOnDisk(p) {
		t.Fatal("half of largeJournalBytes is large")
	}
	size(walPath(p), largeJournalBytes/2)
	if !largeOnDisk(p) {
		t.Fatal("file and WAL of largeJournalBytes together are not large")
	}
}

// decayRows are rows from to to of an input (TestLargeHook).
func decayRows(from, to int, at time.Time) iter.Seq2[*Row, error] {
	usd := paybatch.MustCurrency("USD")
	return func(yield func(*Row, error) bool) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("RF-%07d", i)
			r := &Row{Key: "pb1-dc-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
				Account: "ABC123", MerchantTxID: id, Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i)},
				BodySHA256: "h-" + id, State: paybatch.StatePending, Source: paybatch.Source{File: "dc.csv", Row: i + 2},
				CreatedAt: at, UpdatedAt: at, Method: "POST", Path: "/v1/payments/refund/ABC123",
				Body: []byte(`{}`), Terminal: "ABC123", TransactionRef: "TXS" + id, OrderRef: "ORS" + id}
			if !yield(r, nil) {
				return
			}
		}
	}
}
