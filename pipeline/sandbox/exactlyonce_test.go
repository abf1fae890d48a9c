package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// TestExactlyOnceUnderFaults: concurrent clients retry keyed refunds through
// 5xx, resets and lost responses until they get an answer. Every key must
// have executed exactly once, and the transaction_id each client finally
// saw must be the one the sandbox executed.
func TestExactlyOnceUnderFaults(t *testing.T) {
	ts := sandboxtest.NewServer(t, sandbox.Options{
		Seed: 3, Faults: "5xx=0.1,reset=0.1,lost=0.15",
		Fixtures: benchFixtures(),
		SmartRetry: srsandbox.SandboxConfig{
			PaymentsLimit: paybatch.Limit{N: 1 << 20, Per: time.Second},
			OverallLimit:  paybatch.Limit{N: 1 << 20, Per: time.Second},
		},
	})
	c, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: ts.URL, APIKey: srsandbox.TestAPIKey,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	const keys = 150
	seen := make([]string, keys)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 6 {
		wg.Go(func() {
			for i := range work {
				req, err := c.Prepare(paybatch.Instruction{Kind: paybatch.KindRefund, Terminal: "ABC123",
					TransactionRef: fmt.Sprintf("TXB%05d", i%benchSales), OrderRef: fmt.Sprintf("ORB%05d", i%benchSales),
					MerchantTxID: fmt.Sprintf("eo-%d", i), Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: 100}})
				if err != nil {
					t.Error(err)
					return
				}
				for attempt := 0; ; attempt++ {
					sub, err := c.Send(context.Background(), req, fmt.Sprintf("eo-key-%d", i))
					var pe *paybatch.ProviderError
					if err == nil {
						seen[i] = sub.ProviderID
						break
					}
					if !errors.As(err, &pe) || pe.Class != paybatch.ClassTransient || attempt > 50 {
						t.Errorf("key %d: %v", i, err)
						break
					}
				}
			}
		})
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()

	ops := ts.Server.Operations()
	byKey := map[string]string{}
	for _, op := range ops {
		if prev, dup := byKey[op.IdempotencyKey]; dup {
			t.Fatalf("key %s executed twice (%s, %s)", op.IdempotencyKey, prev, op.IDs["transaction_id"])
		}
		byKey[op.IdempotencyKey] = op.IDs["transaction_id"]
	}
	if len(ops) != keys {
		t.Fatalf("executed %d operations for %d keys", len(ops), keys)
	}
	for i, id := range seen {
		if byKey[fmt.Sprintf("eo-key-%d", i)] != id {
			t.Fatalf("key %d: client saw %s, sandbox executed %s", i, id, byKey[fmt.Sprintf("eo-key-%d", i)])
		}
	}
	st := ts.Server.Stats()
	if st["faults.lost"] == 0 || st["faults.reset"] == 0 || st["faults.5xx"] == 0 || st["replayed"] == 0 {
		t.Fatalf("faults did not all fire: %v", st)
	}
}
