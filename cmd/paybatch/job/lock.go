package job

import (
	"context"
	"errors"
	"fmt"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/reconcile"
)

// JournalURLVar names the variable holding the journal's location when
// neither --journal nor the job file gives one (a postgres:// URL, or a
// DuckDB file).
const JournalURLVar = "PAYBATCH_JOURNAL_URL"

// underLease runs fn under the lease of the credential when the journal
// is shared (PostgreSQL); a lease another live process holds is ErrLocked.
func underLease(ctx context.Context, j journal.Journal, p paybatch.Provider, c Credentials, fn func(ctx context.Context) error) error {
	err := postgres.UnderLease(ctx, j, p, c.Secret, 0, fn)
	if errors.Is(err, postgres.ErrLeaseHeld) {
		return paybatch.WithKind(paybatch.ErrLocked, fmt.Errorf("%w; this run sent nothing — run again when it is done", err))
	}
	return err
}

// lockJournal takes the journal's one lock (JOURNAL.lock) for a whole job,
// so two overlapping runs (cron firing while last night's job is still
// going) cannot both submit, and the journal stays this job's while it is
// closed for reconciling. It is an OS advisory lock, released when the
// process exits, even by SIGKILL, so a crash never leaves a stale lock.
//
// A PostgreSQL journal (postgres://…) has no file lock: many processes
// share it, each credential worked by the holder of its lease (see
// postgres.UnderLease); lockJournal returns a nil Lock for it.
func lockJournal(path string) (*journal.Lock, error) {
	if postgres.IsURL(path) {
		return nil, nil
	}
	lk, err := journal.TakeLock(path)
	switch {
	case errors.Is(err, journal.ErrLocked):
		return nil, paybatch.WithKind(paybatch.ErrLocked, fmt.Errorf("another paybatch run is using journal %s (lock %s held); this run did nothing — wait for it to finish",
			path, journal.LockPath(path)))
	case err != nil:
		return nil, classifyIO(paybatch.ErrConfig, path, err)
	}
	return lk, nil
}

// openJournal opens the journal (with lk when the caller holds the lock
// already): "another process has it" is ErrLocked, a full disk is
// ErrResumable (nothing is wrong with the input), anything else ErrInput (a
// bad path, not a journal, a damaged journal).
func openJournal(ctx context.Context, path string, lk *journal.Lock) (journal.Journal, error) {
	return openJournalWith(ctx, path, journal.Options{Lock: lk})
}

// openJournalWith is openJournal with the options a DuckDB journal is
// opened with (a PostgreSQL journal takes none of them).
func openJournalWith(ctx context.Context, path string, opts journal.Options) (journal.Journal, error) {
	if postgres.IsURL(path) {
		j, err := postgres.Open(ctx, path, postgres.Options{})
		if errors.Is(err, postgres.ErrURL) {
			return nil, paybatch.WithKind(paybatch.ErrConfig, err)
		}
		if err != nil {
			return nil, paybatch.WithKind(paybatch.ErrResumable, err) // the server is unreachable: nothing was done
		}
		return j, nil
	}
	j, err := openDuckDB(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// openDuckDB opens a DuckDB journal file (see openJournal).
func openDuckDB(ctx context.Context, path string, opts journal.Options) (*journal.DuckDB, error) {
	j, err := journal.OpenDuckDB(ctx, path, opts)
	switch {
	case err == nil:
		return j, nil
	case errors.Is(err, journal.ErrLocked):
		return nil, paybatch.WithKind(paybatch.ErrLocked, fmt.Errorf("another paybatch run is using journal %s: %w", path, err))
	}
	return nil, classifyIO(paybatch.ErrInput, path, err)
}

// HoldJournal opens the journal at loc for a process that keeps it for its
// life (paybatch serve). A DuckDB file is locked first, so cron's `run`
// and the CLI get ErrLocked meanwhile; a PostgreSQL journal (postgres://…)
// is shared with other processes (row claims and credential leases keep
// them apart). release closes the journal and drops the lock.
func HoldJournal(ctx context.Context, loc string) (j journal.Journal, release func(), err error) {
	if postgres.IsURL(loc) {
		if j, err = openJournal(ctx, loc, nil); err != nil {
			return nil, nil, err
		}
		return j, func() { _ = j.Close() }, nil
	}
	lk, err := lockJournal(loc)
	if err != nil {
		return nil, nil, err
	}
	// The server pages the outcomes of a batch it sends by state: the
	// journal keeps the states of the files being sent (KeepSendStates).
	if j, err = openDuckDB(ctx, loc, journal.Options{Lock: lk, KeepSendStates: true}); err != nil {
		_ = lk.Release()
		return nil, nil, err
	}
	return j, func() {
		_ = j.Close()
		_ = lk.Release()
	}, nil
}

// LoadJournal loads the journal at loc into rec: a DuckDB file is read as
// it is (ATTACHed read-only); a PostgreSQL journal's lines are copied into
// rec's DuckDB (postgres.FillReconcile) while runs may be writing it.
func LoadJournal(ctx context.Context, rec *reconcile.Reconciler, loc string) error {
	return loadJournalScope(ctx, rec, loc, reconcile.JournalScope{})
}

// loadJournalScope is LoadJournal narrowed to scope (one run's report).
func loadJournalScope(ctx context.Context, rec *reconcile.Reconciler, loc string, scope reconcile.JournalScope) error {
	if !postgres.IsURL(loc) {
		return rec.LoadJournalScope(ctx, loc, scope)
	}
	j, err := openJournal(ctx, loc, nil)
	if err != nil {
		return err
	}
	defer j.Close()
	return rec.LoadJournalFrom(ctx, j.Name(), scope, j.(*postgres.Journal).FillReconcile)
}
