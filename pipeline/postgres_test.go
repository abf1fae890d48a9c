package pipeline_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// The crash rounds on a PostgreSQL journal: a fresh database per round,
// the same faults, kills and checks as on DuckDB.
func TestCrashResumePostgres(t *testing.T) {
	if raceEnabled {
		// CI runs these rounds without -race; under the detector they
		// would only slow CI (the backend's concurrency is raced by the
		// conformance suite, the lease tests and the CLI test).
		t.Skip("the PostgreSQL crash rounds run without -race")
	}
	pgtest.ClusterURL(t)
	crashResume(t, func(t *testing.T) string { return pgtest.URL(t) })
}

// openAt opens the journal at loc: a postgres:// URL or a DuckDB file.
func openAt(ctx context.Context, loc string) (journal.Journal, error) {
	if postgres.IsURL(loc) {
		return postgres.Open(ctx, loc, postgres.Options{})
	}
	return journal.OpenDuckDB(ctx, loc, journal.Options{})
}

func openTest(tb testing.TB, loc string) journal.Journal {
	tb.Helper()
	j, err := openAt(context.Background(), loc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// BenchmarkSubmitJournals: journaled submission throughput, unthrottled,
// over loopback HTTP to the sandbox (BenchmarkSubmitLoopback's run), on a
// DuckDB journal and on a PostgreSQL journal side by side.
func BenchmarkSubmitJournals(b *testing.B) {
	ins := refundsOf(benchRows)
	for _, backend := range []string{"duckdb", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			if backend == "postgres" {
				pgtest.ClusterURL(b)
			}
			for b.Loop() {
				b.StopTimer()
				ts := sandboxtest.NewServer(b, sandbox.Options{Seed: 1, Fixtures: saleFixtures(benchRows), SmartRetry: unlimitedSandbox()})
				pacer := pipeline.NewPacer(noLimits)
				loc := b.TempDir() + "/j.duckdb"
				if backend == "postgres" {
					loc = pgtest.URL(b)
				}
				j := openTest(b, loc)
				c := newClient(b, ts.URL, pacer, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}})
				cfg := pipeline.Config{Pacer: pacer, NoPoll: true}
				b.StartTimer()
				start := time.Now()
				res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), cfg)
				el := time.Since(start)
				if err != nil || res.States[paybatch.StateAccepted] != benchRows {
					b.Fatal(err, res.States)
				}
				b.ReportMetric(float64(benchRows)/el.Seconds(), "rows/s")
			}
		})
	}
}
