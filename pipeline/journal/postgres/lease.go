package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// Leases: one per credential, so that whoever holds it alone sends with
// the credential and its rate limit is honoured by one pacer. The lease is
// a row with an expiry on the server's clock (no two hosts' clocks are
// compared). The holder renews it while it works; a holder that dies stops
// renewing, and once the lease has expired another process takes it over
// (epoch + 1). Intent writes are fenced (see Fence): a row is marked
// "sending" only in a transaction that finds the lease still held, with
// the lease row share-locked, so a process that lost its lease cannot send
// again, and a taker-over sees every intent committed before it took over.
// A row left "sending" by the dead holder is resent under its idempotency
// key, which the provider answers by replay: no duplicate.

var (
	// ErrLeaseHeld: another live process holds the credential's lease.
	ErrLeaseHeld = errors.New("another paybatch process holds this credential's lease")
	// ErrLeaseLost: the lease expired or was taken over; stop sending.
	ErrLeaseLost = errors.New("this process lost the credential's lease")
)

// DefaultLeaseTTL is how long a lease outlives its holder's last renewal.
const DefaultLeaseTTL = 30 * time.Second

// CredentialID names a credential in leases without revealing it: the
// provider and the first 16 hex digits of the secret's SHA-256.
func CredentialID(provider, secret string) string {
	h := sha256.Sum256([]byte(secret))
	return provider + ":" + hex.EncodeToString(h[:8])
}

// Lease is this process's hold on one credential.
type Lease struct {
	j          *Journal
	credential string
	epoch      int64
	ttl        time.Duration
}

// Credential is the lease's credential id.
func (l *Lease) Credential() string { return l.credential }

// Epoch counts the lease's holders so far (1 for the first).
func (l *Lease) Epoch() int64 { return l.epoch }

// TryLease takes the credential's lease if it is free, expired or already
// this process's; otherwise ErrLeaseHeld, saying who holds it until when.
func (j *Journal) TryLease(ctx context.Context, credential string, ttl time.Duration) (*Lease, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	var epoch int64
	err := j.pool.QueryRow(ctx, `INSERT INTO credential_leases AS l (credential, holder, epoch, acquired_at, expires_at)
		VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (credential) DO UPDATE SET holder = excluded.holder, epoch = l.epoch + 1,
			acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
		WHERE l.expires_at < clock_timestamp() OR l.holder = excluded.holder
		RETURNING epoch`, credential, j.holder, ttl.Microseconds()).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		var holder string
		var left time.Duration
		qerr := j.pool.QueryRow(ctx, `SELECT holder, expires_at - clock_timestamp() FROM credential_leases WHERE credential = $1`,
			credential).Scan(&holder, &left)
		if qerr != nil {
			return nil, fmt.Errorf("journal %s: lease %s: %w", j.name, credential, ErrLeaseHeld)
		}
		return nil, fmt.Errorf("journal %s: lease %s: %w: %s, for %s more unless renewed", j.name, credential, ErrLeaseHeld,
			holder, left.Round(time.Millisecond))
	}
	if err != nil {
		return nil, j.wrap("lease", err)
	}
	return &Lease{j: j, credential: credential, epoch: epoch, ttl: ttl}, nil
}

// AcquireLease waits until the credential's lease can be taken (its holder
// releases it, or stops renewing it and it expires) or ctx ends.
func (j *Journal) AcquireLease(ctx context.Context, credential string, ttl time.Duration) (*Lease, error) {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	every := min(ttl/4, time.Second)
	for {
		l, err := j.TryLease(ctx, credential, ttl)
		if err == nil || !errors.Is(err, ErrLeaseHeld) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waiting: %w)", err, ctx.Err())
		case <-time.After(every):
		}
	}
}

// Renew extends the lease by its TTL; ErrLeaseLost when it is no longer
// this process's.
func (l *Lease) Renew(ctx context.Context) error {
	tag, err := l.j.pool.Exec(ctx, `UPDATE credential_leases SET expires_at = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE credential = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
		l.credential, l.j.holder, l.epoch, l.ttl.Microseconds())
	if err != nil {
		return l.j.wrap("lease", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("journal %s: lease %s: %w", l.j.name, l.credential, ErrLeaseLost)
	}
	return nil
}

// Release gives the lease up at once (another process may take it).
func (l *Lease) Release(ctx context.Context) error {
	_, err := l.j.pool.Exec(ctx, `DELETE FROM credential_leases WHERE credential = $1 AND holder = $2 AND epoch = $3`,
		l.credential, l.j.holder, l.epoch)
	return l.j.wrap("lease", err)
}

// Keep renews the lease every third of its TTL until the returned stop is
// called. The returned context is cancelled, with cause ErrLeaseLost, when
// a renewal finds the lease gone or renewals fail for longer than the TTL.
func (l *Lease) Keep(ctx context.Context) (context.Context, func()) {
	kctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
			}
			err := l.Renew(kctx)
			switch {
			case err == nil:
				last = time.Now()
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				return
			case time.Since(last) > l.ttl:
				cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
				return
			}
		}
	}()
	return kctx, func() { cancel(nil); <-done }
}

// Fence makes every later Save of a row into "sending" (an intent) commit
// only while l is held: a Save after the lease is lost fails with
// ErrLeaseLost and the caller does not send. nil removes the fence.
func (j *Journal) Fence(l *Lease) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.fence = l
}

// UnderLease runs fn while this process holds the lease of the credential
// (provider and secret) when j is a PostgreSQL journal: it waits for the
// lease at most twice its TTL (long enough to take over from a holder that
// died; a live holder keeps renewing, and then ErrLeaseHeld says who has
// it), renews it while fn runs, fences intents with it, and releases it
// after. fn's context is cancelled, with cause ErrLeaseLost, if the lease
// is lost. Any other journal is one process's alone: fn just runs.
func UnderLease(ctx context.Context, j journal.Journal, provider paybatch.Provider, secret string, ttl time.Duration,
	fn func(ctx context.Context) error) error {
	pj, ok := j.(*Journal)
	if !ok {
		return fn(ctx)
	}
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	wctx, cancel := context.WithTimeout(ctx, 2*ttl)
	l, err := pj.AcquireLease(wctx, CredentialID(string(provider), secret), ttl)
	cancel()
	if err != nil {
		return err
	}
	kctx, stop := l.Keep(ctx)
	pj.Fence(l)
	err = fn(kctx)
	stop()
	pj.Fence(nil)
	if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// LeaseInfo is one credential's lease as the journal holds it.
type LeaseInfo struct {
	Credential string
	Holder     string
	Epoch      int64
	Expired    bool
	ExpiresAt  time.Time
}

// Leases lists the credentials' leases.
func (j *Journal) Leases(ctx context.Context) ([]LeaseInfo, error) {
	rows, err := j.pool.Query(ctx, `SELECT credential, holder, epoch, expires_at < clock_timestamp(), expires_at
		FROM credential_leases ORDER BY credential`)
	if err != nil {
		return nil, j.wrap("leases", err)
	}
	out, err := pgx.CollectRows(rows, func(sc pgx.CollectableRow) (LeaseInfo, error) {
		var l LeaseInfo
		err := sc.Scan(&l.Credential, &l.Holder, &l.Epoch, &l.Expired, &l.ExpiresAt)
		l.ExpiresAt = l.ExpiresAt.UTC()
		return l, err
	})
	return out, j.wrap("leases", err)
}
