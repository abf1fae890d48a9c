package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Lock is the one lock of a journal: an OS advisory lock on JOURNAL.lock,
// released by the kernel when its process exits, even by SIGKILL, so a
// crash never leaves a stale lock. The holder publishes its progress beside
// the journal (JOURNAL.progress.json) for readers in other processes.
type Lock struct {
	journal string
	fl      *flock.Flock
}

// LockPath is the lock file of the journal at path.
func LockPath(journal string) string { return journal + ".lock" }

// ProgressPath is the progress snapshot of the journal at path.
func ProgressPath(journal string) string { return journal + ".progress.json" }

// TakeLock takes the journal's lock without waiting: ErrLocked when another
// process holds it.
func TakeLock(journal string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(journal), 0o755); err != nil {
		return nil, fmt.Errorf("journal %s: %w", journal, err)
	}
	fl := flock.New(LockPath(journal))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("journal %s: lock: %w", journal, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s (lock %s held): %w", journal, fl.Path(), ErrLocked)
	}
	l := &Lock{journal: journal, fl: fl}
	// A snapshot left by a holder that died is not this holder's.
	_ = os.Remove(ProgressPath(journal))
	return l, nil
}

// readLock takes the journal's lock shared, without waiting, for a reader
// that opens the file read-only (Upgrade's readVersion, before reconcile
// or `journal export` ATTACHes it): ErrLocked while a process holds the
// journal. DuckDB's own lock on the file refuses such a reader too, but not
// while the holder's database is closed for a reopen (duckdb_reopen.go);
// this lock is held throughout. Readers share it. A journal without a lock
// file has had no holder since it was created (a holder creates the file
// before it locks it): nothing is created, and release does nothing; nor
// when the file cannot be opened (another user's, a read-only directory),
// where DuckDB's lock is the only guard, as it was.
func readLock(journal string) (release func(), err error) {
	release = func() {}
	if _, err := os.Stat(LockPath(journal)); err != nil {
		return release, nil
	}
	fl := flock.New(LockPath(journal), flock.SetFlag(os.O_RDONLY))
	ok, err := fl.TryRLock()
	if err != nil {
		return release, nil
	}
	if !ok {
		return nil, fmt.Errorf("%s (lock %s held): %w", journal, fl.Path(), ErrLocked)
	}
	return func() { _ = fl.Unlock() }, nil
}

// Journal is the path of the locked journal.
func (l *Lock) Journal() string { return l.journal }

// Release removes the progress snapshot and releases the lock.
func (l *Lock) Release() error {
	if err := os.Remove(ProgressPath(l.journal)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = l.fl.Unlock()
		return fmt.Errorf("journal %s: %w", l.journal, err)
	}
	return l.fl.Unlock()
}

// Progress is a snapshot of what the holder of a journal is doing.
type Progress struct {
	PID     int       `json:"pid"`
	Updated time.Time `json:"updated"`
	// Phase is "submit", "poll", "reconcile", "report", … ; Total and Done
	// count the phase's rows.
	Phase    string `json:"phase"`
	Total    int    `json:"total"`
	Done     int    `json:"done"`
	Requests int64  `json:"requests"`
	// Counts are the journal's rows by state as of CountsAt (they are
	// refreshed between phases and poll rounds, not at every request).
	Counts   []StateCount `json:"counts,omitempty"`
	CountsAt time.Time    `json:"counts_at,omitzero"`
	// Server is the address of the `paybatch serve` that holds the journal
	// ("" for a run): status and history send people there.
	Server string `json:"server,omitempty"`
}

// Publish replaces the progress snapshot atomically (a reader sees the old
// one or the new one, never a partial file).
func (l *Lock) Publish(p Progress) error {
	p.PID = os.Getpid()
	if p.Updated.IsZero() {
		p.Updated = time.Now().UTC()
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("journal %s: progress: %w", l.journal, err)
	}
	path := ProgressPath(l.journal)
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("journal %s: progress: %w", l.journal, err)
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("journal %s: progress: %w", l.journal, werr)
	}
	return nil
}

// ReadProgress reads the snapshot published by the holder of the journal
// at path; ok is false when there is none.
func ReadProgress(journal string) (p Progress, ok bool, err error) {
	b, err := os.ReadFile(ProgressPath(journal))
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("journal %s: progress: %w", journal, err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, false, fmt.Errorf("journal %s: progress: %w", journal, err)
	}
	return p, true, nil
}
