package pipeline_test

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// These tests run the engine with the real SmartRetry client against the
// real sandbox over HTTP on 127.0.0.1, and take the sandbox's operation log
// as ground truth of what executed.

var crashRounds = flag.Int("crash-rounds", 20, "seeded SIGKILL rounds in TestCrashResume")

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// saleFixtures are n approved USD 100.00 sales on the test terminal to
// refund: TXA00000… / ORA00000….
func saleFixtures(n int) *sandbox.Fixtures {
	f := &sandbox.Fixtures{}
	for i := range n {
		f.SmartRetry.Transactions = append(f.SmartRetry.Transactions, srsandbox.TransactionFixture{
			TransactionID: fmt.Sprintf("TXA%05d", i), OrderID: fmt.Sprintf("ORA%05d", i),
			Terminal: srsandbox.TestTerminal, Type: smartretry.TypeSale, Amount: "100.00", Currency: "USD",
			Status: smartretry.StatusApproved, MerchantTransactionID: fmt.Sprintf("sale-%05d", i),
		})
	}
	return f
}

// refundsOf makes n refunds, one per fixture sale, amounts 10.00…; none end
// in .51–.53 (the sandbox's decline triggers) unless declines asks.
func refundsOf(n int, declines ...int) []paybatch.Instruction {
	usd := paybatch.MustCurrency("USD")
	dec := map[int]bool{}
	for _, d := range declines {
		dec[d] = true
	}
	out := make([]paybatch.Instruction, n)
	for i := range out {
		minor := int64(1000 + (i%40)*10)
		if dec[i] {
			minor = 1051
		}
		out[i] = paybatch.Instruction{Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry,
			MerchantTxID: fmt.Sprintf("rf-%05d", i), Amount: paybatch.Money{Currency: usd, Minor: minor},
			Terminal: srsandbox.TestTerminal, TransactionRef: fmt.Sprintf("TXA%05d", i), OrderRef: fmt.Sprintf("ORA%05d", i),
			Source: paybatch.Source{File: "refunds.csv", Row: i + 2}}
	}
	return out
}

func seqOf(ins []paybatch.Instruction) iter.Seq2[paybatch.Instruction, error] {
	return func(yield func(paybatch.Instruction, error) bool) {
		for _, in := range ins {
			if !yield(in, nil) {
				return
			}
		}
	}
}

func newClient(tb testing.TB, url string, pacer *pipeline.Pacer, hc *http.Client) *smartretry.Client {
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	}
	if tb != nil {
		// Close our idle connections before the sandbox shuts down (cleanups
		// run last-in first-out): a dialled but unused connection would make
		// http.Server.Shutdown wait 5 s for it.
		tb.Cleanup(hc.CloseIdleConnections)
	}
	c, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: url, APIKey: srsandbox.TestAPIKey,
		HTTPClient: hc, OnRate: pacer.OnRate})
	if err != nil {
		panic(err)
	}
	return c
}

func openJournal(tb testing.TB, path string) *journal.DuckDB {
	tb.Helper()
	j, err := journal.OpenDuckDB(context.Background(), path, journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// fast limits for tests that are not about rate: the sandbox is given the
// same budget.
var fastLimits = paybatch.Limits{Submit: paybatch.Limit{N: 5000, Per: time.Second},
	Status: paybatch.Limit{N: 5000, Per: time.Second}, Overall: paybatch.Limit{N: 10000, Per: time.Second}}

func fastSandbox() srsandbox.SandboxConfig {
	return srsandbox.SandboxConfig{
		PaymentsLimit: paybatch.Limit{N: 5000, Per: time.Second},
		StatusLimit:   paybatch.Limit{N: 5000, Per: time.Second},
		OverallLimit:  paybatch.Limit{N: 10000, Per: time.Second},
		SettleAfter:   300 * time.Millisecond,
	}
}

func testConfig(p *pipeline.Pacer) pipeline.Config {
	return pipeline.Config{Pacer: p, BackoffInitial: 5 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		PollInitial: 100 * time.Millisecond, PollMax: 500 * time.Millisecond, PollDeadline: 60 * time.Second,
		RequestTimeout: 3 * time.Second, MaxAttempts: 30}
}

// executedOnce checks the ground truth: every instruction's
// merchant_transaction_id executed exactly once, nothing else executed, and
// the journal's provider id is the one the sandbox issued.
func executedOnce(t *testing.T, ops []sim.Operation, ins []paybatch.Instruction, j journal.Journal) {
	t.Helper()
	byRef := map[string][]sim.Operation{}
	for _, op := range ops {
		byRef[op.Reference] = append(byRef[op.Reference], op)
	}
	if len(ops) != len(ins) {
		t.Errorf("sandbox executed %d operations for %d instructions", len(ops), len(ins))
	}
	rows, err := j.Rows(context.Background(), journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	jr := map[string]*journal.Row{}
	for _, r := range rows {
		jr[r.MerchantTxID] = r
	}
	bad := 0
	for _, in := range ins {
		got := byRef[in.MerchantTxID]
		r := jr[in.MerchantTxID]
		switch {
		case len(got) != 1:
			t.Errorf("%s executed %d times", in.MerchantTxID, len(got))
		case r == nil:
			t.Errorf("%s not in the journal", in.MerchantTxID)
		case r.ProviderID != got[0].IDs["transaction_id"]:
			t.Errorf("%s: journal provider_id %q, sandbox issued %q", in.MerchantTxID, r.ProviderID, got[0].IDs["transaction_id"])
		case got[0].Amount != in.Amount.String() || got[0].IdempotencyKey != pipeline.Key(in):
			t.Errorf("%s: sandbox executed %s under key %s", in.MerchantTxID, got[0].Amount, got[0].IdempotencyKey)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many errors")
		}
	}
}

func allFinal(t *testing.T, j journal.Journal, want int) {
	t.Helper()
	rows, err := j.Rows(context.Background(), journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	n, i := 0, 0
	for _, r := range rows {
		if r.State == paybatch.StateFinal || r.State == paybatch.StateDeclined {
			n++
		}
	}
	if n != want {
		for _, r := range rows {
			if r.State == paybatch.StateFinal || r.State == paybatch.StateDeclined {
				continue
			}
			if i++; i <= 5 {
				t.Logf("not final: %s %s %s", r.MerchantTxID, r.State, r.Problem)
			}
		}
		t.Fatalf("%d rows final, want %d", n, want)
	}
}

func TestExactlyOnceUnderFaults(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 42, Fixtures: saleFixtures(n),
		Faults: "5xx=0.1,reset=0.05,lost=0.02,latency=20ms±10ms", SmartRetry: fastSandbox()})
	pacer := pipeline.NewPacer(fastLimits)
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	ins := refundsOf(n, 7, 99)
	cfg := testConfig(pacer)
	cfg.Concurrency = 64
	res, err := pipeline.Submit(context.Background(), j, newClient(t, ts.URL, pacer, nil), seqOf(ins), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in %v: %d requests, %d retries; sandbox stats %v", n, res.Elapsed, res.Requests, res.Retries, ts.Server.Stats())
	if res.States[paybatch.StateFinal] != n-2 || res.States[paybatch.StateDeclined] != 2 || res.Verdict() != paybatch.ErrExceptions {
		t.Errorf("states %v exit %v", res.States, res.Verdict())
	}
	st := ts.Server.Stats()
	if st[sim.CountFaultLost] == 0 || st[sim.CountFault5xx] == 0 || st[sim.CountFaultReset] == 0 {
		t.Errorf("faults not exercised: %v", st)
	}
	executedOnce(t, ts.Server.Operations(), ins, j)
	allFinal(t, j, n)
}

func TestHangsAreBoundedAndRetried(t *testing.T) {
	n := 100
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 3, Fixtures: saleFixtures(n),
		Faults: "hang=0.05,lost=0.05,hangmax=10s", SmartRetry: fastSandbox()})
	pacer := pipeline.NewPacer(fastLimits)
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	ins := refundsOf(n)
	cfg := testConfig(pacer)
	cfg.RequestTimeout = 300 * time.Millisecond
	res, err := pipeline.Submit(context.Background(), j, newClient(t, ts.URL, pacer, nil), seqOf(ins), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Server.Stats()[sim.CountFaultHang] == 0 {
		t.Error("no hang injected")
	}
	if res.States[paybatch.StateFinal] != n {
		t.Errorf("states %v", res.States)
	}
	executedOnce(t, ts.Server.Operations(), ins, j)
}

func TestEditedRowSendsNothing(t *testing.T) {
	n := 20
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 1, Fixtures: saleFixtures(n), SmartRetry: fastSandbox()})
	pacer := pipeline.NewPacer(fastLimits)
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	c := newClient(t, ts.URL, pacer, nil)
	ins := refundsOf(n)
	if _, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), testConfig(pacer)); err != nil {
		t.Fatal(err)
	}
	before := ts.Server.Stats()[sim.CountRequests]
	ins[5].Amount.Minor = 1234 // 12.34 instead of 10.50
	res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), testConfig(pacer))
	if err != nil {
		t.Fatal(err)
	}
	if d := ts.Server.Stats()[sim.CountRequests] - before; d != 0 {
		t.Errorf("re-run of an edited file made %d requests", d)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].MerchantTxID != "rf-00005" || res.Conflicts[0].Source.Row != 7 {
		t.Fatalf("conflicts %+v", res.Conflicts)
	}
	if res.Verdict() != paybatch.ErrExceptions || res.AlreadyDone != n-1 {
		t.Errorf("exit %d, already done %v", res.Verdict(), res.AlreadyDone)
	}
	ins[5].Amount.Minor = 1050 // back to what was sent
	executedOnce(t, ts.Server.Operations(), ins, j)
}

// The key is also the provider's guard: a row edited while the journal
// still thinks it unsent (e.g. a journal lost) gets 409 from the provider
// and is recorded as a conflict, never executed twice.
func TestProviderConflictWhenJournalLost(t *testing.T) {
	n := 5
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 1, Fixtures: saleFixtures(n), SmartRetry: fastSandbox()})
	pacer := pipeline.NewPacer(fastLimits)
	c := newClient(t, ts.URL, pacer, nil)
	ins := refundsOf(n)
	j1 := openJournal(t, t.TempDir()+"/a.duckdb")
	if _, err := pipeline.Submit(context.Background(), j1, c, seqOf(ins), testConfig(pacer)); err != nil {
		t.Fatal(err)
	}
	ins[2].Amount.Minor = 999
	j2 := openJournal(t, t.TempDir()+"/b.duckdb")
	res, err := pipeline.Submit(context.Background(), j2, c, seqOf(ins), testConfig(pacer))
	if err != nil {
		t.Fatal(err)
	}
	if res.States[paybatch.StateConflict] != 1 || res.States[paybatch.StateFinal] != n-1 {
		t.Fatalf("states %v", res.States)
	}
	if len(ts.Server.Operations()) != n {
		t.Errorf("%d operations executed", len(ts.Server.Operations()))
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sendLog records when each request left and what came back.
type sendLog struct {
	mu   sync.Mutex
	sent []time.Time
	r429 []struct{ at, until time.Time }
	next http.RoundTripper
	// stripRate removes X-RateLimit-* headers, as from a provider that sends
	// none (SmarterPay documents none): only 429 + Retry-After remain.
	stripRate bool
}

func (l *sendLog) RoundTrip(r *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := l.next.RoundTrip(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Method == http.MethodPost {
		l.sent = append(l.sent, t0)
	}
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		now := time.Now()
		l.r429 = append(l.r429, struct{ at, until time.Time }{now, now.Add(time.Duration(secs) * time.Second)})
	}
	if err == nil && l.stripRate {
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			resp.Header.Del(h)
		}
	}
	return resp, err
}

func TestRateSteadyAtLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 20 s")
	}
	if raceEnabled {
		// The sandbox shares the process: race-detector stalls at a window
		// boundary move requests into the next window on the server side.
		t.Skip("wall-clock pacing is not meaningful under -race")
	}
	n := 1000
	sc := fastSandbox()
	sc.PaymentsLimit = paybatch.Limit{N: 50, Per: time.Second}
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 1, Fixtures: saleFixtures(n), SmartRetry: sc})
	lim, _ := paybatch.ParseLimit("50/1s") // --rate 50/1s
	cfg := pipeline.Config{Provider: paybatch.SmartRetry, SubmitRate: lim, NoPoll: true,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	pacer := pipeline.NewPacer(cfg.Limits())
	cfg.Pacer = pacer
	log := &sendLog{next: http.DefaultTransport}
	c := newClient(t, ts.URL, pacer, &http.Client{Transport: log, Timeout: 10 * time.Second})
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	ins := refundsOf(n)
	res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops := ts.Server.Operations()
	span := ops[len(ops)-1].Time.Sub(ops[0].Time)
	achieved := float64(len(ops)-1) / span.Seconds()
	t.Logf("%d rows in %v; executed at %.2f/s = %.1f%% of 50/s; 429s: %d", n, res.Elapsed, achieved, achieved/50*100, res.RateLimited)
	var gaps []time.Duration
	for i := 1; i < len(ops); i++ {
		if d := ops[i].Time.Sub(ops[i-1].Time); d > 60*time.Millisecond {
			gaps = append(gaps, d)
		}
	}
	t.Logf("gaps > 60ms between executions: %v", gaps)
	if res.RateLimited != 0 || ts.Server.Stats()[sim.CountRateLimited] != 0 {
		t.Errorf("%d 429s at a paced 50/s", res.RateLimited)
	}
	// The pacer's margin follows the latency spread it observes: ≈ 97–98 %
	// on a quiet machine, less on one so loaded that latencies spread by
	// 50 ms and more (then arrivals do too, and a 429 would cost a second).
	// BenchmarkContractedLimit measures the figure. What this test holds on
	// any machine is the pace of the widest allowance the pacer ever takes
	// (a quarter period: 49.5 per 1.25 s = 39.6/s), less 5 %; at load 15 the
	// observed spread reached that cap and the run paced at 39.8/s, which a
	// fixed 85 % of the limit failed.
	t.Logf("the pacer's jitter allowance at the end: %v", pacer.Jitter())
	if floor := 0.95 * 49.5 / 1.25; achieved < floor {
		t.Errorf("achieved %.2f/s, want ≥ %.1f/s", achieved, floor)
	}
	if achieved > 50.5 {
		t.Errorf("achieved %.2f/s, above the limit", achieved)
	}
	executedOnce(t, ops, ins, j)
}

func TestRateLimitStormPausesEveryone(t *testing.T) {
	// With and without the X-RateLimit-* headers: either way nothing may
	// leave during a Retry-After. (That honouring the headers closes the gate
	// before the budget is spent is TestOnRateClosesTheGateUntilReset; a
	// count of 429s between two timed runs was too noisy to assert on.)
	stormRun(t, false)
	stormRun(t, true)
}

// stormRun submits 120 rows at a believed 400/s against a 30/s sandbox and
// returns the number of 429s; without rate headers there must be a storm.
func stormRun(t *testing.T, stripRate bool) int {
	n := 120
	sc := fastSandbox()
	sc.PaymentsLimit = paybatch.Limit{N: 30, Per: time.Second}
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 1, Fixtures: saleFixtures(n), SmartRetry: sc})
	// The client believes it may send 400/s: the sandbox answers with 429
	// storms, each with Retry-After.
	pacer := pipeline.NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 400, Per: time.Second}})
	log := &sendLog{next: http.DefaultTransport, stripRate: stripRate}
	c := newClient(t, ts.URL, pacer, &http.Client{Transport: log, Timeout: 10 * time.Second})
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	ins := refundsOf(n)
	cfg := testConfig(pacer)
	cfg.NoPoll = true
	cfg.Concurrency = 32
	res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.States[paybatch.StateAccepted] != n {
		t.Fatalf("states %v", res.States)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.r429) == 0 {
		if stripRate {
			t.Fatal("no 429 storm happened")
		}
		return 0
	}
	// Nothing may leave between a 429's arrival and its Retry-After (with
	// slack for requests that had already passed the gate when it arrived).
	// The timing proof runs without -race; under the detector, scheduling
	// delays of the instrumented sandbox and client dwarf any slack.
	const slack = 20 * time.Millisecond
	for _, p := range log.r429 {
		for _, s := range log.sent {
			if !raceEnabled && s.After(p.at.Add(slack)) && s.Before(p.until.Add(-slack)) {
				t.Fatalf("request sent %v after a 429 whose Retry-After lasted until +%v", s.Sub(p.at), p.until.Sub(p.at))
			}
		}
	}
	t.Logf("rate headers stripped=%v: %d 429s (%d seen by the engine), %d sends, elapsed %v", stripRate, len(log.r429), res.RateLimited, len(log.sent), res.Elapsed)
	executedOnce(t, ts.Server.Operations(), ins, j)
	return len(log.r429)
}
