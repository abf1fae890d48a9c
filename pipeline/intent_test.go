package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/pipelinetest"
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

// TestLingerIsNotASlowCommit: at a paced rate an intent waits for its
// commit group's linger by design, so only a wait beyond the linger is
// warned of as a slow journal commit (every paced run warned of "slow
// journal commits" of 101–103 ms when the warning took 100 ms for slow,
// the linger's own length).
func TestLingerIsNotASlowCommit(t *testing.T) {
	var log pipelinetest.SyncBuffer
	cfg := fastConfig()
	cfg.Pacer = NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 100, Per: time.Second}})
	cfg.NoPoll = true
	cfg.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := Submit(context.Background(), mustJournal(t), newFake(1), seq(refunds(60)), cfg); err != nil {
		t.Fatal(err)
	}
	if got := log.String(); strings.Contains(got, "slow journal commit") {
		t.Errorf("a paced run with a fast journal warned:\n%s", got)
	}
}
