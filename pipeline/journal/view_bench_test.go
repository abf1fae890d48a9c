package journal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// BenchmarkExportView measures reading journal_export (what reconcile
// reads) against its floor, the journal table alone, at PAYBATCH_BENCH_ROWS
// rows (default 100,000): after a clean run (no events) and after a killed
// one (an event for every row, unfolded). Figures in BENCHMARKS.md.
func BenchmarkExportView(b *testing.B) {
	n := 100_000
	if s := os.Getenv("PAYBATCH_BENCH_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, filepath.Join(b.TempDir(), "j.duckdb"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	usd := paybatch.MustCurrency("USD")
	now := time.Now()
	src := func(yield func(*Row, error) bool) {
		for i := range n {
			r := &Row{Key: fmt.Sprintf("k%09d", i), Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, MerchantTxID: fmt.Sprintf("id%09d", i),
				Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i)}, BodySHA256: "h", State: paybatch.StateFinal,
				Outcome: paybatch.OutcomeSucceeded, CreatedAt: now, UpdatedAt: now}
			if !yield(r, nil) {
				return
			}
		}
	}
	if _, err := j.Ingest(ctx, src, now); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, from string) {
		for b.Loop() {
			var c, s int64
			if err := j.db.QueryRow(`SELECT count(*), sum(amount_minor) FROM (SELECT key, state, outcome, provider_status, amount_minor, currency FROM `+from+`)`).Scan(&c, &s); err != nil || c != int64(n) {
				b.Fatal(err, c)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("floor_table", func(b *testing.B) { read(b, "journal") })
	b.Run("view_no_events", func(b *testing.B) { read(b, "journal_export") })
	for page, err := range j.Pages(ctx, Filter{}) {
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range page {
			r.Polls++
			if err := j.SaveLater(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := j.stopWriter(); err != nil { // committed, not folded: a killed run's events
		b.Fatal(err)
	}
	b.Run("view_event_per_row", func(b *testing.B) { read(b, "journal_export") })
}
