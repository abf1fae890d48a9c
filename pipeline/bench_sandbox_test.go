package pipeline_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

const benchRows = 5000

func unlimitedSandbox() srsandbox.SandboxConfig {
	return srsandbox.SandboxConfig{
		PaymentsLimit: paybatch.Limit{N: 1 << 30, Per: time.Second},
		StatusLimit:   paybatch.Limit{N: 1 << 30, Per: time.Second},
		OverallLimit:  paybatch.Limit{N: 1 << 30, Per: time.Second},
		SettleAfter:   -1,
	}
}

var noLimits = paybatch.Limits{}

// BenchmarkSubmitLoopback: the whole engine, unthrottled, over loopback
// HTTP to the sandbox: rows submitted and journaled per second (intent
// committed before each send, the answer after), no polling.
func BenchmarkSubmitLoopback(b *testing.B) {
	ins := refundsOf(benchRows)
	for b.Loop() {
		b.StopTimer()
		ts := sandboxtest.NewServer(b, sandbox.Options{Seed: 1, Fixtures: saleFixtures(benchRows), SmartRetry: unlimitedSandbox()})
		pacer := pipeline.NewPacer(noLimits)
		j := openJournal(b, b.TempDir()+"/j.duckdb")
		c := newClient(b, ts.URL, pacer, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}})
		cfg := pipeline.Config{Pacer: pacer, NoPoll: true} // adaptive window: 256 when unthrottled
		b.StartTimer()
		start := time.Now()
		res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), cfg)
		el := time.Since(start)
		if err != nil || res.States[paybatch.StateAccepted] != benchRows {
			b.Fatal(err, res.States)
		}
		b.ReportMetric(float64(benchRows)/el.Seconds(), "rows/s")
	}
}

// BenchmarkRawSendLoopback is the baseline: the same client and sandbox,
// the same concurrency, no engine and no journal.
func BenchmarkRawSendLoopback(b *testing.B) {
	ins := refundsOf(benchRows)
	for b.Loop() {
		b.StopTimer()
		ts := sandboxtest.NewServer(b, sandbox.Options{Seed: 1, Fixtures: saleFixtures(benchRows), SmartRetry: unlimitedSandbox()})
		pacer := pipeline.NewPacer(noLimits)
		c := newClient(b, ts.URL, pacer, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}})
		b.StartTimer()
		start := time.Now()
		p := pool.New().WithErrors().WithMaxGoroutines(64)
		for _, in := range ins {
			p.Go(func() error {
				req, err := c.Prepare(in)
				if err != nil {
					return err
				}
				_, err = c.Send(context.Background(), req, pipeline.Key(in))
				return err
			})
		}
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(benchRows)/time.Since(start).Seconds(), "rows/s")
	}
}

// BenchmarkConfiguredLimit: the fraction of a configured limit achieved
// (sandbox limit 100/s, --rate 100/1s — SmartRetry's documented payment
// limit — 1,000 rows ≈ 10 s).
func BenchmarkConfiguredLimit(b *testing.B) {
	const n = 1000
	ins := refundsOf(n)
	for b.Loop() {
		b.StopTimer()
		sc := unlimitedSandbox()
		sc.PaymentsLimit = paybatch.Limit{N: 100, Per: time.Second}
		ts := sandboxtest.NewServer(b, sandbox.Options{Seed: 1, Fixtures: saleFixtures(n), SmartRetry: sc})
		cfg := pipeline.Config{Provider: paybatch.SmartRetry, SubmitRate: paybatch.Limit{N: 100, Per: time.Second}, NoPoll: true}
		pacer := pipeline.NewPacer(cfg.Limits())
		cfg.Pacer = pacer
		j := openJournal(b, b.TempDir()+"/j.duckdb")
		c := newClient(b, ts.URL, pacer, nil)
		b.StartTimer()
		res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), cfg)
		if err != nil || res.States[paybatch.StateAccepted] != n {
			b.Fatal(err, res.States)
		}
		ops := ts.Server.Operations()
		rate := float64(len(ops)-1) / ops[len(ops)-1].Time.Sub(ops[0].Time).Seconds()
		b.ReportMetric(rate, "rows/s")
		b.ReportMetric(100*rate/100, "%_of_limit")
		b.ReportMetric(float64(res.RateLimited), "429s")
	}
}
