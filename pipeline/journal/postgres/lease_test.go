package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// A dead holder's lease is taken over after it expires, and the old holder
// can then no longer record an intent (so it cannot send).
func TestLeaseTakeOverAndFence(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	cred := postgres.CredentialID("smartretry", "sr_test_key")
	const ttl = 400 * time.Millisecond
	acquired := time.Now()
	la, err := a.TryLease(ctx, cred, ttl)
	if err != nil || la.Epoch() != 1 {
		t.Fatalf("lease %v %v", la, err)
	}
	if _, err := b.TryLease(ctx, cred, ttl); !errors.Is(err, postgres.ErrLeaseHeld) {
		t.Fatalf("second holder: %v", err)
	}
	if _, err := a.Ingest(ctx, seq(row(1, 100), row(2, 200)), t0); err != nil {
		t.Fatal(err)
	}
	a.Fence(la)
	r := row(1, 100)
	r.State, r.Attempts = paybatch.StateSending, 1
	if err := a.Save(r); err != nil {
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
}

// Keep renews the lease while the holder works, and cancels its context
// when the lease is lost.
func TestLeaseKeep(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	const ttl = 300 * time.Millisecond
	la, err := a.TryLease(ctx, "c", ttl)
	if err != nil {
		t.Fatal(err)
	}
	kctx, stop := la.Keep(ctx)
	defer stop()
	time.Sleep(3 * ttl)
	if _, err := b.TryLease(ctx, "c", ttl); !errors.Is(err, postgres.ErrLeaseHeld) {
		t.Fatalf("kept lease taken: %v", err)
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
		t.Fatal("lost lease not noticed")
	}
}
