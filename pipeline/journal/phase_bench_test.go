package journal

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// cpuNow is the process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchRows(n int, at time.Time) iter.Seq2[*Row, error] {
	usd := paybatch.MustCurrency("USD")
	return func(yield func(*Row, error) bool) {
		for i := range n {
			id := fmt.Sprintf("RF-%07d", i)
			r := &Row{Key: "pb1-bench-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
				Account: "ABC123", MerchantTxID: id, Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i%5000)},
				BodySHA256: "0123456789abcdef0123456789abcdef0123456789abcdef" + id, State: paybatch.StatePending,
				Source:    paybatch.Source{File: "/tmp/bench.csv", Row: i + 2},
				CreatedAt: at, UpdatedAt: at, Method: "POST", Path: "/v1/payments/refund/ABC123",
				Body:     []byte(`{"merchant_transaction_id":"` + id + `","amount":"1.00","currency":"USD","reason":"x"}`),
				Terminal: "ABC123", TransactionRef: "TXS" + id, OrderRef: "ORS" + id}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// BenchmarkPhases times a submit's non-paced journal phases on a new
// journal: Ingest of n rows; then, after every row's state changed once,
// the fold (Flush), Tally and Close. cpu-ms/op is the process's CPU.
func BenchmarkPhases(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 3000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var ingest, fold, tally, closing time.Duration
			for b.Loop() {
				b.StopTimer()
				at := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
				j, err := OpenDuckDB(ctx, filepath.Join(b.TempDir(), "j.duckdb"), Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				c0 := cpuNow()
				res, err := j.Ingest(ctx, benchRows(n, at), at)
				if err != nil || res.New != n {
					b.Fatal(err, res)
				}
				c1 := cpuNow()
				b.StopTimer()
				for r := range benchRows(n, at) {
					r.State, r.Outcome, r.HTTPStatus, r.Attempts, r.ProviderID = paybatch.StateAccepted, "", 201, 1, "P-"+r.MerchantTxID
					if err := j.SaveLater(r); err != nil {
						b.Fatal(err)
					}
				}
				if err := j.stopWriter(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				c2 := cpuNow()
				if err := j.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				c3 := cpuNow()
				t, err := j.Tally(ctx)
				if err != nil || t.States[paybatch.StateAccepted] != n {
					b.Fatal(err, t)
				}
				c4 := cpuNow()
				if err := j.Close(); err != nil {
					b.Fatal(err)
				}
				c5 := cpuNow()
				ingest += c1 - c0
				fold += c3 - c2
				tally += c4 - c3
				closing += c5 - c4
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(ingest), "ingest-cpu-ms/op")
			b.ReportMetric(ms(fold), "fold-cpu-ms/op")
			b.ReportMetric(ms(tally), "tally-cpu-ms/op")
			b.ReportMetric(ms(closing), "close-cpu-ms/op")
		})
	}
}
