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
