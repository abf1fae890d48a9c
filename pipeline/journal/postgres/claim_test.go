package postgres_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// Two processes (two connection pools) work the same credential's rows at
// once, with no lease between them: each row is claimed by one of them
// (row locks), so each is sent once — no request answered by replay — and
// executed once.
func TestTwoProcessesOneCredentialClaimRows(t *testing.T) {
	const n, rate = 200, 200
	url := pgtest.URL(t)
	ts := sandboxFor(t, n, rate)
	key, _ := credential(1)
	pacer := pipeline.NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: rate, Per: time.Second},
		Status: paybatch.Limit{N: 5 * rate, Per: time.Second}, Overall: paybatch.Limit{N: 10 * rate, Per: time.Second}})
	var wg sync.WaitGroup
	sent := make([]int, 2)
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			j, err := postgres.Open(ctx, url, postgres.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer j.Close()
			c, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: ts.URL, APIKey: key,
				HTTPClient: &http.Client{Timeout: 5 * time.Second}, OnRate: pacer.OnRate})
			if err != nil {
				t.Error(err)
				return
			}
			for try := 0; ; try++ {
				res, err := pipeline.Submit(ctx, j, c, seqOf(refunds(1, n)), pipeline.Config{Pacer: pacer, NoPoll: true,
					BackoffInitial: 5 * time.Millisecond, BackoffMax: 200 * time.Millisecond, RequestTimeout: 3 * time.Second, MaxAttempts: 30})
				if errors.Is(err, postgres.ErrConcurrentIngest) && try < 5 {
					continue // both journaled the input at the same moment: the loser reads it again
				}
				if err != nil {
					t.Errorf("process %d: %v", p, err)
				}
				sent[p] = res.Sent
				return
			}
		}()
	}
	wg.Wait()
	t.Logf("process 0 sent %d rows, process 1 sent %d", sent[0], sent[1])
	if sent[0]+sent[1] != n {
		t.Errorf("the processes sent %d + %d rows, want %d in all", sent[0], sent[1], n)
	}
	if r := ts.Server.Stats()[sim.CountReplayed]; r != 0 {
		t.Errorf("%d requests answered by replay: a row was sent by both processes", r)
	}
	ops := operations(t, ts.URL)
	seen := map[string]int{}
	for _, op := range ops {
		seen[op.Reference]++
	}
	for _, in := range refunds(1, n) {
		if seen[in.MerchantTxID] != 1 {
			t.Errorf("%s executed %d times", in.MerchantTxID, seen[in.MerchantTxID])
		}
	}
	j := open(t, url)
	rows, err := j.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rows {
		if c.State != paybatch.StateAccepted && c.State != paybatch.StateFinal {
			t.Errorf("%d rows left %s", c.Rows, c.State)
		}
	}
}

// A row in flight in another live process ("sending": its intent committed,
// its answer not yet) is not claimed by a process that read it in that
// state — the flake of TestTwoProcessesOneCredentialClaimRows at load 15,
// where a process paging behind the other resent 80 of its rows in flight
// (80 replays). Once that process is gone (its session closed, however it
// ended) the row is claimed and resent under its key; under a lease the
// holder claims it at once (it took the credential over).
func TestClaimSkipsRowInFlightElsewhere(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, err := postgres.Open(ctx, url, postgres.Options{}) // closed below, as if it ended
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, url)
	for _, j := range []*postgres.Journal{a, b} {
		if _, err := j.Ingest(ctx, seq(row(1, 100), row(2, 200)), t0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		r := row(i, int64(i)*100)
		r.State, r.Attempts = paybatch.StateSending, 1
		if err := a.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	// b read the rows as they now are (sending, attempt 1) and tries them.
	r := row(1, 100)
	r.State, r.Attempts = paybatch.StateSending, 2
	if err := b.Save(r); !errors.Is(err, journal.ErrClaimed) {
		t.Fatalf("a row in flight in a live process was claimed by another: %v", err)
	}
	// Under a lease, c takes it (and a would be fenced out).
	c := open(t, url)
	if _, err := c.Ingest(ctx, seq(row(1, 100), row(2, 200)), t0); err != nil {
		t.Fatal(err)
	}
	l, err := c.TryLease(ctx, "smartretry:test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.Fence(l)
	r = row(2, 200)
	r.State, r.Attempts = paybatch.StateSending, 2
	if err := c.Save(r); err != nil {
		t.Fatalf("the lease holder could not claim a row in flight under no lease: %v", err)
	}
	// a dies: its session closes; b claims what a left sending.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = row(1, 100)
		r.State, r.Attempts = paybatch.StateSending, 2
		err := b.Save(r)
		if err == nil {
			break
		}
		if !errors.Is(err, journal.ErrClaimed) || time.Now().After(deadline) {
			t.Fatalf("a row left sending by a closed process not claimed: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the server ending a's session
	}
}
