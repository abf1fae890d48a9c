package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
)

// lockJournal takes the per-journal lock that stops two overlapping runs
// (cron firing while last night's job is still going) from both submitting.
// The lock is an OS advisory lock on JOURNAL.run.lock, released when the
// process exits, even by SIGKILL, so a crash never leaves a stale lock.
func lockJournal(journal string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(journal), 0o755); err != nil {
		return nil, classifyIO(paybatch.ErrConfig, fmt.Errorf("journal directory: %w", err))
	}
	l := flock.New(journal + ".run.lock")
	ok, err := l.TryLock()
	if err != nil {
		return nil, classifyIO(paybatch.ErrConfig, fmt.Errorf("lock %s: %w", l.Path(), err))
	}
	if !ok {
		return nil, paybatch.WithKind(paybatch.ErrLocked, fmt.Errorf("another paybatch run is using journal %s (lock %s held); this run did nothing — wait for it to finish", journal, l.Path()))
	}
	return func() { _ = l.Unlock() }, nil
}

// openJournal opens the journal: "another process has it" is ErrLocked, a
// full disk is ErrResumable (nothing is wrong with the input), anything else
// ErrInput (a bad path, not a journal).
func openJournal(ctx context.Context, path string) (*pipeline.Journal, error) {
	j, err := pipeline.OpenJournal(ctx, path)
	switch {
	case err == nil:
		return j, nil
	case errors.Is(err, pipeline.ErrLocked):
		return nil, paybatch.WithKind(paybatch.ErrLocked, err)
	}
	return nil, classifyIO(paybatch.ErrInput, err)
}
