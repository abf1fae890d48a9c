package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// fakeProvider is an in-memory provider with SmartRetry-like idempotency
// (same key + body replays, other body conflicts) and seeded faults. It
// exists to test the engine's state machine; the end-to-end proofs run
// against the real sandbox over HTTP.
type fakeProvider struct {
	mu      sync.Mutex
	rng     *rand.Rand
	fail    float64 // transient error before executing
	lost    float64 // executes, then the response is lost
	decline map[string]bool
	auth    bool
	rate429 int // next n sends answer 429
	stored  map[string]fakeStored
	execs   map[string]int // merchant_transaction_id → executions
	polls   map[string]int
	finalAt int // polls until final
	sends   int
	sentAt  []time.Time
	onSend  func(n int) // called with the send count, after it is counted
}

type fakeStored struct {
	body []byte
	sub  paybatch.Submission
}

func newFake(seed uint64) *fakeProvider {
	return &fakeProvider{rng: rand.New(rand.NewPCG(seed, seed)), stored: map[string]fakeStored{},
		execs: map[string]int{}, polls: map[string]int{}, decline: map[string]bool{}, finalAt: 1}
}

func (f *fakeProvider) Prepare(in paybatch.Instruction) (paybatch.Request, error) {
	body, err := json.Marshal(struct {
		Ref    string `json:"transaction_reference_id"`
		MTID   string `json:"merchant_transaction_id"`
		Amount string `json:"amount"`
	}{in.TransactionRef, in.MerchantTxID, in.Amount.String()})
	return paybatch.Request{Method: "POST", Path: "/v1/payments/refund/" + in.Terminal, Body: body}, err
}

func (f *fakeProvider) Send(ctx context.Context, req paybatch.Request, key string) (paybatch.Submission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends++
	f.sentAt = append(f.sentAt, time.Now())
	if f.onSend != nil {
		f.onSend(f.sends)
	}
	if f.auth {
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassAuth, HTTPStatus: 401}
	}
	if f.rate429 > 0 {
		f.rate429--
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassRateLimited, HTTPStatus: 429, RetryAfter: 300 * time.Millisecond}
	}
	if f.rng.Float64() < f.fail {
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: 500}
	}
	if s, ok := f.stored[key]; ok {
		if !bytes.Equal(s.body, req.Body) {
			return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassConflict, HTTPStatus: 409,
				Problem: paybatch.Problem{ReasonCode: "IDEMPOTENCY_CONFLICT"}}
		}
		sub := s.sub
		sub.Replayed = true
		return sub, nil
	}
	var b struct {
		MTID string `json:"merchant_transaction_id"`
	}
	json.Unmarshal(req.Body, &b)
	f.execs[b.MTID]++
	sub := paybatch.Submission{HTTPStatus: 200, Accepted: !f.decline[b.MTID], ProviderID: fmt.Sprintf("TX%06d", len(f.stored)), OrderID: "OR000001"}
	f.stored[key] = fakeStored{body: bytes.Clone(req.Body), sub: sub}
	if f.rng.Float64() < f.lost {
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassTransient, Err: fmt.Errorf("connection reset")}
	}
	return sub, nil
}

func (f *fakeProvider) Status(ctx context.Context, ref paybatch.ProviderRef) (paybatch.ProviderStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls[ref.ID]++
	if f.polls[ref.ID] < f.finalAt {
		return paybatch.ProviderStatus{Raw: "PROCESSING", Outcome: paybatch.OutcomePending}, nil
	}
	return paybatch.ProviderStatus{Raw: "APPROVED", Outcome: paybatch.OutcomeSucceeded, ReasonCode: "AUTH.APPROVED"}, nil
}

func (f *fakeProvider) execCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.execs))
	for k, v := range f.execs {
		out[k] = v
	}
	return out
}

// refunds makes n refund instructions.
func refunds(n int) []paybatch.Instruction {
	usd := paybatch.MustCurrency("USD")
	out := make([]paybatch.Instruction, n)
	for i := range out {
		out[i] = paybatch.Instruction{Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry,
			MerchantTxID: fmt.Sprintf("rf-%05d", i), Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i)},
			Terminal: "TERM01", TransactionRef: fmt.Sprintf("TX%06d", i), OrderRef: fmt.Sprintf("OR%06d", i),
			Source: paybatch.Source{File: "batch.csv", Row: i + 2}}
	}
	return out
}

func seq(ins []paybatch.Instruction) iter.Seq2[paybatch.Instruction, error] {
	return func(yield func(paybatch.Instruction, error) bool) {
		for _, in := range ins {
			if !yield(in, nil) {
				return
			}
		}
	}
}

// mustJournal opens a fresh journal in a temp dir.
func mustJournal(tb testing.TB, opts ...journal.Options) *journal.DuckDB {
	tb.Helper()
	var o journal.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	j, err := journal.OpenDuckDB(context.Background(), tb.TempDir()+"/j.duckdb", o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}

// edit applies fn to every journal row and saves the rows it reports
// changed (what a test needs to stage a state no run would leave).
func edit(tb testing.TB, j journal.Journal, fn func(r *journal.Row) bool) {
	tb.Helper()
	ctx := context.Background()
	rows, err := j.Rows(ctx, journal.Query{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range rows {
		if fn(r) {
			if err := j.Save(r); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := j.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
}

func allRows(tb testing.TB, j journal.Journal) []*journal.Row {
	tb.Helper()
	rows, err := j.Rows(context.Background(), journal.Query{})
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

func fastConfig() Config {
	// Unlimited pacing: these tests are about the state machine, not rate.
	return Config{Pacer: NewPacer(paybatch.Limits{}), BackoffInitial: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		PollInitial: time.Millisecond, PollMax: 10 * time.Millisecond, PollDeadline: 10 * time.Second,
		MaxAttempts: 20, RetryBudget: 100000}
}
