package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// Lease tests run with short TTLs. A loaded machine can stall a step past
// one; a test then says so, measured (tooSlow), and runs again on a fresh
// database with a longer TTL — never on a wrong answer given in time.

// tooSlow is why an attempt proved nothing: a step that had to finish
// within a TTL did not.
type tooSlow string

// retryTiming runs attempt with ttl, then with ttl × grow while it
// reports tooSlow, at most tries times.
func retryTiming(t *testing.T, ttl time.Duration, grow, tries int, attempt func(t *testing.T, ttl time.Duration) tooSlow) {
	t.Helper()
	for try := 1; ; try++ {
		why := attempt(t, ttl)
		if why == "" || t.Failed() {
			return
		}
		if try == tries {
			t.Fatalf("TTL %s: %s (%d attempts, each TTL %d× the last): the machine is too slow for this test", ttl, why, tries, grow)
		}
		t.Logf("TTL %s: %s: again with TTL %s", ttl, why, ttl*time.Duration(grow))
		ttl *= time.Duration(grow)
	}
}

// A dead holder's lease is taken over after it expires, and the old holder
// can then no longer record an intent (so it cannot send).
func TestLeaseTakeOverAndFence(t *testing.T) {
	retryTiming(t, 400*time.Millisecond, 4, 3, leaseTakeOverAndFence)
}

func leaseTakeOverAndFence(t *testing.T, ttl time.Duration) tooSlow {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	cred := postgres.CredentialID("smartretry", "sr_test_key")
	if _, err := a.Ingest(ctx, seq(row(1, 100), row(2, 200)), t0); err != nil {
		t.Fatal(err)
	}
	acquired := time.Now() // no later than the server set the expiry
	la, err := a.TryLease(ctx, cred, ttl)
	if err != nil || la.Epoch() != 1 {
		t.Fatalf("lease %v %v", la, err)
	}
	_, err = b.TryLease(ctx, cred, ttl)
	if err == nil && time.Since(acquired) >= ttl {
		return tooSlow(fmt.Sprintf("the second holder asked %s after the lease was taken", time.Since(acquired).Round(time.Millisecond)))
	}
	if !errors.Is(err, postgres.ErrLeaseHeld) {
		t.Fatalf("second holder: %v", err)
	}
	a.Fence(la)
	r := row(1, 100)
	r.State, r.Attempts = paybatch.StateSending, 1
	err = a.Save(r)
	if errors.Is(err, postgres.ErrLeaseLost) && time.Since(acquired) >= ttl {
		return tooSlow(fmt.Sprintf("the intent was committed %s after the lease was taken", time.Since(acquired).Round(time.Millisecond)))
	}
	if err != nil {
		t.Fatal(err)
	}
	// a stops renewing (as if killed); b waits for the expiry.
	lb, err := b.AcquireLease(ctx, cred, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(acquired); lb.Epoch() != 2 || took < ttl {
		t.Fatalf("taken over %s after it was taken (TTL %s), epoch %d", took, ttl, lb.Epoch())
	}
	r2 := row(2, 200)
	r2.State, r2.Attempts = paybatch.StateSending, 1
	if err := a.Save(r2); !errors.Is(err, postgres.ErrLeaseLost) {
		t.Fatalf("intent after the lease was lost: %v", err)
	}
	if err := la.Renew(ctx); !errors.Is(err, postgres.ErrLeaseLost) {
		t.Fatalf("renew a lost lease: %v", err)
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TryLease(ctx, cred, ttl); err != nil {
		t.Fatalf("released lease not free: %v", err)
	}
	return ""
}

// Keep renews the lease while the holder works, and cancels its context
// when the lease is lost.
func TestLeaseKeep(t *testing.T) {
	retryTiming(t, 300*time.Millisecond, 3, 3, leaseKeep)
}

func leaseKeep(t *testing.T, ttl time.Duration) tooSlow {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	la, err := a.TryLease(ctx, "c", ttl)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := la.Keep(ctx)
	defer stop()
	// Keep renews every third of the TTL; a stall of a third of it (in
	// this process or the server) is the margin a renewal has before the
	// lease can expire under it.
	p := startStallProbe(b)
	defer p.stop()
	time.Sleep(3 * ttl)
	stall := p.longest()
	if _, err := b.TryLease(ctx, "c", ttl); err == nil && stall >= ttl/3 {
		return tooSlow(fmt.Sprintf("the kept lease expired with a stall of %s measured meanwhile", stall.Round(time.Millisecond)))
	} else if !errors.Is(err, postgres.ErrLeaseHeld) {
		t.Fatalf("kept lease taken (longest stall meanwhile %s): %v", stall.Round(time.Millisecond), err)
	}
	if _, err := b.Pool().Exec(ctx, `UPDATE credential_leases SET holder = 'thief'`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kctx.Done():
		if !errors.Is(context.Cause(kctx), postgres.ErrLeaseLost) {
			t.Fatalf("cause %v", context.Cause(kctx))
		}
	case <-time.After(2 * ttl):
		if stall := p.longest(); stall >= ttl/3 {
			return tooSlow(fmt.Sprintf("the lost lease was not noticed within %s, with a stall of %s measured", 2*ttl, stall.Round(time.Millisecond)))
		}
		t.Fatal("lost lease not noticed")
	}
	return ""
}

// stallProbe measures, until stopped, the longest a round trip to the
// server took beyond its 10 ms pace: the server's latency and this
// process's scheduling delays, which a lease renewal suffers alike.
type stallProbe struct {
	mu   sync.Mutex
	max  time.Duration
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func startStallProbe(j *postgres.Journal) *stallProbe {
	p := &stallProbe{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		const pace = 10 * time.Millisecond
		last := time.Now()
		for {
			select {
			case <-p.quit:
				return
			case <-time.After(pace):
			}
			if _, err := j.Pool().Exec(context.Background(), `SELECT 1`); err != nil {
				return
			}
			now := time.Now()
			p.mu.Lock()
			p.max = max(p.max, now.Sub(last)-pace)
			p.mu.Unlock()
			last = now
		}
	}()
	return p
}

func (p *stallProbe) longest() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

func (p *stallProbe) stop() { p.once.Do(func() { close(p.quit); <-p.done }) }
