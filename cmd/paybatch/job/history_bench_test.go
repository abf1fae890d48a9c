package job

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/reconcile"
)

// BenchmarkNightlyReport is #16's "night 30 of a job with 29 earlier nights
// of 100k rows takes no more than 1.5x night 1": the step of a nightly run
// whose cost used to grow with the journal — reconcile that night's rows
// against that night's ledger and write its report (report-RUN.xlsx,
// report.xlsx, the summary) — with 1 night in the journal and with 30.
// Submitting is not in it: 100k rows at the provider's 100/s is 17 min of
// pacing whatever the history. The baseline, in the same run, is what every
// nightly run did before (reconcile the whole journal).
//
// Rows per night: PAYBATCH_BENCH_NIGHT_ROWS (default 100000); the 30-night
// journal (3M rows) is built once, in about a minute.
//
//	go test ./cmd/paybatch/job -run '^$' -bench NightlyReport -benchtime 3x
func BenchmarkNightlyReport(b *testing.B) {
	rows := 100_000
	if s := os.Getenv("PAYBATCH_BENCH_NIGHT_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("PAYBATCH_BENCH_NIGHT_ROWS=%q", s)
		}
		rows = n
	}
	const nights = 30
	dir := b.TempDir()
	ctx := context.Background()
	jpath := filepath.Join(dir, "journal.duckdb")
	one := filepath.Join(dir, "one-night.duckdb")
	j, err := journal.OpenDuckDB(ctx, jpath, journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	day := func(n int) time.Time { return time.Date(2026, 11, 1, 2, 15, 0, 0, time.UTC).AddDate(0, 0, n-1) }
	input := func(n int) string { return filepath.Join(dir, fmt.Sprintf("refunds-night%02d.csv", n)) }
	start := time.Now()
	for n := 1; n <= nights; n++ {
		if _, err := j.Ingest(ctx, nightRows(n, rows, input(n), day(n)), day(n)); err != nil {
			b.Fatal(err)
		}
		id := day(n).Format("2006-01-02T150405Z")
		if err := j.StartRun(ctx, journal.RunStart{ID: id, Started: day(n), Inputs: []journal.RunInput{{Path: input(n), SHA256: "bench", Rows: rows}}}); err != nil {
			b.Fatal(err)
		}
		if n == 1 { // the journal of night 1: a copy taken before night 2
			if err := j.Close(); err != nil {
				b.Fatal(err)
			}
			if err := copyFile(jpath, one); err != nil {
				b.Fatal(err)
			}
			if j, err = journal.OpenDuckDB(ctx, jpath, journal.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d nights × %d rows in %s", nights, rows, time.Since(start).Round(time.Second))
	for _, n := range []int{1, nights} {
		if err := writeLedger(filepath.Join(dir, fmt.Sprintf("ledger-night%02d.csv", n)), n, rows); err != nil {
			b.Fatal(err)
		}
	}

	night := func(b *testing.B, jp string, n int) {
		out := filepath.Join(b.TempDir(), "out")
		plan := &Plan{Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Journal: jp, Outputs: out,
			Ledger: filepath.Join(dir, fmt.Sprintf("ledger-night%02d.csv", n))}
		if err := os.MkdirAll(out, 0o755); err != nil {
			b.Fatal(err)
		}
		lk, err := lockJournal(jp)
		if err != nil {
			b.Fatal(err)
		}
		defer lk.Release()
		id := day(n).Format("2006-01-02T150405Z")
		rec := journal.RunRecord{ID: id, Started: day(n), Inputs: []journal.RunInput{{Path: input(n), Rows: rows}}}
		b.ResetTimer()
		for range b.N {
			r := &runner{d: Deps{}, plan: plan, lock: lk, m: runMetrics{RowsByState: map[string]int64{}, MinorByCurr: map[string]int64{}}, out: &Outcome{}}
			r.d.defaults()
			c := &carried{rec: rec}
			sum, err := r.reconcileAndReport(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			if got := sum.Categories[paybatch.CatMatched].Count; got != int64(rows) {
				b.Fatalf("night %d: %d matched, want %d", n, got, rows)
			}
			if err := r.closeJournal(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("night=1", func(b *testing.B) { night(b, one, 1) })
	b.Run(fmt.Sprintf("night=%d", nights), func(b *testing.B) { night(b, jpath, nights) })
	// Baseline: night 30 as before, the whole journal reconciled (29 nights'
	// rows are missing from that night's ledger: 2.9M exceptions).
	b.Run(fmt.Sprintf("night=%d/whole-journal-baseline", nights), func(b *testing.B) {
		for range b.N {
			rec, err := reconcile.Open(ctx, reconcile.Options{Path: filepath.Join(b.TempDir(), "r.duckdb")})
			if err != nil {
				b.Fatal(err)
			}
			if err := rec.LoadJournal(ctx, jpath); err != nil {
				b.Fatal(err)
			}
			if err := rec.LoadLedger(ctx, filepath.Join(dir, fmt.Sprintf("ledger-night%02d.csv", nights)), ""); err != nil {
				b.Fatal(err)
			}
			sum, err := rec.Run(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := writeFiles(ctx, rec, paybatch.RunInfo{}, sum, nil, Outputs{XLSX: filepath.Join(b.TempDir(), "report.xlsx")}); err != nil {
				b.Fatal(err)
			}
			rec.Close()
		}
	})
}

// nightRows are night n's rows as a finished run leaves them: every refund
// executed and final.
func nightRows(n, rows int, file string, at time.Time) iter.Seq2[*journal.Row, error] {
	usd := paybatch.MustCurrency("USD")
	return func(yield func(*journal.Row, error) bool) {
		for i := range rows {
			id := fmt.Sprintf("RF-%02d-%07d", n, i)
			minor := int64(100 + i%5000)
			r := &journal.Row{Key: "pb1-bench-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
				Account: "ABC123", MerchantTxID: id, Amount: paybatch.Money{Currency: usd, Minor: minor},
				BodySHA256: "h-" + id, State: paybatch.StateFinal, Outcome: paybatch.OutcomeSucceeded, ProviderStatus: "SETTLED",
				ProviderID: "TX" + id, Attempts: 1, Source: paybatch.Source{File: file, Row: i + 2},
				CreatedAt: at, UpdatedAt: at, SentAt: at, FinalAt: at, Method: "POST", Path: "/v1/payments/refund/ABC123",
				Body: []byte(`{}`), Terminal: "ABC123", TransactionRef: "TXS" + id, OrderRef: "ORS" + id}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// writeLedger writes night n's ledger export: one line per refund of the
// night, as the merchant expects it.
func writeLedger(path string, n, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "merchant_transaction_id,amount,currency,type,date,expected_status")
	for i := range rows {
		minor := 100 + i%5000
		fmt.Fprintf(w, "RF-%02d-%07d,%d.%02d,USD,refund,2026-11-%02d,succeeded\n", n, i, minor/100, minor%100, n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
