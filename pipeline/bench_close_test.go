package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// BenchmarkSubmitFakeClosed is BenchmarkSubmitFake with the journal's
// opening and Close (its checkpoint) inside the timed region: what a
// run of 5,000 rows costs the journal from start to finish. The same
// benchmark, with the pre-redesign OpenJournal, measured 41165d3 for
// BENCHMARKS.md.
func BenchmarkSubmitFakeClosed(b *testing.B) {
	ins := refunds(5000)
	for b.Loop() {
		b.StopTimer()
		path := b.TempDir() + "/j.duckdb"
		f := newFake(1)
		cfg := Config{NoPoll: true, Provider: "fake"}
		b.StartTimer()
		start := time.Now()
		j, err := journal.OpenDuckDB(context.Background(), path, journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := Submit(context.Background(), j, f, seq(ins), cfg)
		if err != nil || res.States[paybatch.StateAccepted] != len(ins) {
			b.Fatal(err, res.States)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(ins))/time.Since(start).Seconds(), "rows/s")
	}
}

// BenchmarkJournalCreate measures creating a new journal and closing it.
func BenchmarkJournalCreate(b *testing.B) {
	for b.Loop() {
		j, err := journal.OpenDuckDB(context.Background(), b.TempDir()+"/j.duckdb", journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
