package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// durableJournal records, per key, how many attempts' intents the journal
// has durably committed (its Save returned).
type durableJournal struct {
	journal.Journal
	mu       sync.Mutex
	attempts map[string]int
}

func (d *durableJournal) Save(r *journal.Row) error {
	err := d.Journal.Save(r)
	if err == nil && r.State == paybatch.StateSending {
		d.mu.Lock()
		d.attempts[r.Key] = max(d.attempts[r.Key], r.Attempts)
		d.mu.Unlock()
	}
	return err
}

// TestNoRequestLeavesBeforeItsIntentIsDurable: at a paced rate, where the
// journal gathers state changes into group commits that linger for
// company, every request — first attempts and retries alike — reaches the
// provider only after the journal committed that attempt's intent.
func TestNoRequestLeavesBeforeItsIntentIsDurable(t *testing.T) {
	dj := &durableJournal{Journal: mustJournal(t), attempts: map[string]int{}}
	f := newFake(3)
	f.fail = 0.3 // transient failures: each retry journals its intent again
	sent := map[string]int{}
	p := &checkedProvider{fakeProvider: f, check: func(key string) {
		dj.mu.Lock()
		defer dj.mu.Unlock()
		sent[key]++
		if sent[key] > dj.attempts[key] {
			t.Errorf("%s: attempt %d sent with %d intents committed", key, sent[key], dj.attempts[key])
		}
	}}
	cfg := fastConfig()
	cfg.Pacer = NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 400, Per: time.Second}})
	cfg.NoPoll = true
	res, err := Submit(context.Background(), dj, p, seq(refunds(200)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Retries == 0 || len(sent) != 200 {
		t.Fatalf("%d retries, %d keys sent; want retries and all 200 rows: %+v", res.Retries, len(sent), res)
	}
}

// checkedProvider calls check with the idempotency key before each send.
type checkedProvider struct {
	*fakeProvider
	check func(key string)
}

func (c *checkedProvider) Send(ctx context.Context, req paybatch.Request, key string) (paybatch.Submission, error) {
	c.check(key)
	return c.fakeProvider.Send(ctx, req, key)
}
