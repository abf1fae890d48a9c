package job

import (
	"context"
	"errors"
	"fmt"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// lockJournal takes the journal's one lock (JOURNAL.lock) for a whole job,
// so two overlapping runs (cron firing while last night's job is still
// going) cannot both submit, and the journal stays this job's while it is
// closed for reconciling. It is an OS advisory lock, released when the
// process exits, even by SIGKILL, so a crash never leaves a stale lock.
func lockJournal(path string) (*journal.Lock, error) {
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
func openJournal(ctx context.Context, path string, lk *journal.Lock) (*journal.DuckDB, error) {
	j, err := journal.OpenDuckDB(ctx, path, journal.Options{Lock: lk})
	switch {
	case err == nil:
		return j, nil
	case errors.Is(err, journal.ErrLocked):
		return nil, paybatch.WithKind(paybatch.ErrLocked, fmt.Errorf("another paybatch run is using journal %s: %w", path, err))
	}
	return nil, classifyIO(paybatch.ErrInput, path, err)
}

// HoldJournal takes the journal's lock and opens it for a process that
// keeps it for its life (paybatch serve): cron's `run` and the CLI get
// ErrLocked meanwhile. release closes the journal and drops the lock.
func HoldJournal(ctx context.Context, path string) (j *journal.DuckDB, release func(), err error) {
	lk, err := lockJournal(path)
	if err != nil {
		return nil, nil, err
	}
	if j, err = openJournal(ctx, path, lk); err != nil {
		_ = lk.Release()
		return nil, nil, err
	}
	return j, func() {
		_ = j.Close()
		_ = lk.Release()
	}, nil
}
