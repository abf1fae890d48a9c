package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// BenchmarkSubmitFake measures the engine and journal alone: submit and
// journal rows against an in-memory provider with no rate limit, no polling.
// Figures in BENCHMARKS.md.
func BenchmarkSubmitFake(b *testing.B) {
	ins := refunds(5000)
	for b.Loop() {
		b.StopTimer()
		j, err := journal.OpenDuckDB(context.Background(), b.TempDir()+"/j.duckdb", journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		f := newFake(1)
		cfg := Config{NoPoll: true, Provider: "fake"}
		b.StartTimer()
		start := time.Now()
		res, err := Submit(context.Background(), j, f, seq(ins), cfg)
		if err != nil || res.States[paybatch.StateAccepted] != len(ins) {
			b.Fatal(err, res.States)
		}
		b.ReportMetric(float64(len(ins))/time.Since(start).Seconds(), "rows/s")
		b.StopTimer()
		j.Close()
		b.StartTimer()
	}
}
