package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A DuckDB checkpoint is not atomic against a crash: it rewrites metadata
// blocks that the file's current header still references IN PLACE (one
// 256 KiB pwrite each), and a SIGKILL inside that write leaves the block
// half new, half old under the old header — the file no longer opens
// ("Corrupt database file: computed checksum …"). The WAL, by contrast, is
// only appended to (a checkpoint marker) until the new header is written,
// so the file as it was before the checkpoint plus the WAL as it was
// before the checkpoint always replay to the same journal
// (TestTornCheckpointResumes, TestWALReplaysOnPreCheckpointFile).
//
// So the journal never lets DuckDB checkpoint on its own (dsn: a
// checkpoint_threshold no WAL reaches; PRAGMA disable_checkpoint_on_shutdown)
// and checkpoints itself, with nothing being written, under a protected
// copy:
//
//  1. copy the WAL and the file to JOURNAL.checkpoint.wal and
//     JOURNAL.checkpoint (fsynced; the file's copy is renamed into place
//     last: its presence says the pair is complete);
//  2. CHECKPOINT (retried while another write transaction runs);
//  3. remove the copy.
//
// It does so in Close, in Flush when the WAL is large, and during a run
// each time the WAL reaches runWAL (Options.CheckpointWAL): between two
// chunks of Ingest, and between two pages of a phase (the engine waits for
// the page's workers, then calls Checkpoint). DuckDB holds every change
// not yet checkpointed in memory — journal rows appended in chunks, state
// changes appended in small groups — so without these a run's memory grew
// with its rows until memory_limit (#19: a 1M-row submit failed mid-send
// at 64 MB).
//
// Opening a journal (under its lock) first looks for that copy: present
// means a checkpoint may have been cut short, and the copy — the journal
// exactly as it was before it, nothing having been written since — is put
// back in place of the file and the WAL; DuckDB then replays the WAL as
// after any crash. A checkpoint that did complete is simply redone later.
//
// Copying costs the file's size, so Close checkpoints only when the WAL
// has grown to an eighth of the file (or the file is small): the copies
// then cost at most eight times the bytes the runs wrote, and the WAL an
// open replays stays below an eighth of the file. A run's checkpoints
// bound memory instead, so they come every runWAL bytes whatever the
// file's size: a 1M-row submit copies its file (up to ≈ 200 MB) ≈ 25 times.

// checkpointCopy is the protected copy of the journal at path; its WAL's
// copy is checkpointCopy(path)+".wal".
func checkpointCopy(path string) string { return path + ".checkpoint" }

// walPath is DuckDB's write-ahead log of the database file at path.
func walPath(path string) string { return path + ".wal" }

const (
	// smallJournal: up to this size Close checkpoints whenever the WAL
	// holds anything (copying a few MB costs milliseconds).
	smallJournal = 64 << 20
	// walShare: above it, Close checkpoints once the WAL reaches 1/walShare
	// of the file.
	walShare = 8
)

// Close checkpoints whenever the WAL holds anything (closeWAL); Flush,
// during a run, only once the WAL reaches largeWAL — a run's changes, never
// checkpointed, otherwise stay pinned in DuckDB's memory until Close, and a
// large enough run failed at memory_limit (the 1M-row submit's fold).
//
// runWAL is the WAL size at which a run checkpoints (see the top of this
// file): 32 MB of WAL is ≈ 50k rows ingested or ≈ 100k state changes, which
// DuckDB holds in ≈ 1.7 times as much memory until the checkpoint (64 MB
// of WAL took 120 MB of the then 128 MB memory_limit at ingest). At 16 MB
// a 1M-row submit ran a third slower (each checkpoint rewrites the row
// groups the folds updated, and copies the file); 16 MB is what lets a
// 200k-row submit pass at a 64 MB limit (TestLargeSubmitStaysInsideMemoryLimit,
// BENCHMARKS.md #19).
const (
	closeWAL = 1
	largeWAL = 64 << 20
	runWAL   = 32 << 20
)

// needsCheckpoint says whether to fold the WAL into the file: the WAL has
// at least minWAL bytes, and the file is small or the WAL has grown to
// 1/walShare of it.
func needsCheckpoint(path string, minWAL int64) bool {
	wal, err := os.Stat(walPath(path))
	if err != nil || wal.Size() < minWAL {
		return false
	}
	db, err := os.Stat(path)
	if err != nil {
		return false
	}
	return db.Size() <= smallJournal || wal.Size()*walShare >= db.Size()
}

// checkpoint folds the WAL into the file under a protected copy (see the
// top of this file) when needsCheckpoint(minWAL) says so; the caller makes
// sure nothing else writes meanwhile (Close; Flush with its writer
// stopped). When the copy cannot be made (a full disk) no checkpoint is
// attempted and the WAL still carries the journal, which loses nothing.
func (j *DuckDB) checkpoint(ctx context.Context, minWAL int64) error {
	if !needsCheckpoint(j.path, minWAL) {
		return nil
	}
	return j.checkpointNow(ctx)
}

// walSize is the size of the WAL of the journal at path (0 when there is
// none).
func walSize(path string) int64 {
	wal, err := os.Stat(walPath(path))
	if err != nil {
		return 0
	}
	return wal.Size()
}

// checkpointNow folds the WAL into the file under a protected copy.
// Neither reads in flight (the page reader's prefetch) nor another
// connection's open write transaction stop a CHECKPOINT here
// (TestCheckpointBetweenPages); should one fail because "there are other
// write transactions active", it is tried again until checkpointWait.
// FORCE CHECKPOINT, which waits by itself, is not used: with a read
// transaction open, it and the transaction's rollback never returned.
func (j *DuckDB) checkpointNow(ctx context.Context) error {
	if err := saveCheckpointCopy(j.path); err != nil {
		return nil
	}
	if j.beforeCheckpoint != nil {
		j.beforeCheckpoint()
	}
	deadline := time.Now().Add(checkpointWait)
	for {
		_, err := j.db.ExecContext(ctx, "CHECKPOINT")
		if err == nil {
			return dropCheckpointCopy(j.path)
		}
		if !strings.Contains(err.Error(), "other write transactions") || time.Now().After(deadline) {
			// The copy stays: the next open puts it back, which is the
			// journal as it was before this attempt.
			return fmt.Errorf("journal %s: checkpoint (nothing lost: the next open restores the copy taken before it): %w", j.path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkpointWait bounds how long a checkpoint waits for other write
// transactions (the web server's) to end.
const checkpointWait = 30 * time.Second

// saveCheckpointCopy copies the WAL, then the file, fsyncs both and the
// directory, and renames the file's copy into place last.
func saveCheckpointCopy(path string) error {
	cp := checkpointCopy(path)
	tmp, tmpWAL := cp+".tmp", walPath(cp)+".tmp"
	err := copyFileSync(walPath(path), tmpWAL)
	if err == nil {
		err = copyFileSync(path, tmp)
	}
	if err == nil {
		err = os.Rename(tmpWAL, walPath(cp))
	}
	if err == nil {
		err = os.Rename(tmp, cp)
	}
	if err == nil {
		err = syncDir(path)
	}
	if err != nil {
		for _, p := range []string{cp, tmp, walPath(cp), tmpWAL} {
			_ = os.Remove(p)
		}
		return fmt.Errorf("journal %s: checkpoint copy: %w", path, err)
	}
	return nil
}

// dropCheckpointCopy removes the copy after a completed checkpoint: the
// file's copy first (with it gone, nothing will be restored).
func dropCheckpointCopy(path string) error {
	cp := checkpointCopy(path)
	for _, p := range []string{cp, walPath(cp)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal %s: %w", path, err)
		}
	}
	return syncDir(path)
}

// restoreCheckpointCopy puts the protected copy back in place of the file
// and its WAL when a checkpoint was cut short (the caller holds the lock,
// and DuckDB has not opened the file). Idempotent: a restore cut short is
// finished by the next one (the WAL's copy is moved first; a missing WAL
// copy beside the file's copy means it was already moved).
func restoreCheckpointCopy(path string) (restored bool, err error) {
	cp := checkpointCopy(path)
	if _, err := os.Stat(cp); errors.Is(err, fs.ErrNotExist) {
		// A copy never completed (a .tmp left by a kill) is not a copy.
		for _, p := range []string{cp + ".tmp", walPath(cp) + ".tmp", walPath(cp)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("journal %s: %w", path, err)
			}
		}
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := os.Rename(walPath(cp), walPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("journal %s: restoring the copy taken before a checkpoint: %w", path, err)
	}
	if err := os.Rename(cp, path); err != nil {
		return false, fmt.Errorf("journal %s: restoring the copy taken before a checkpoint: %w", path, err)
	}
	return true, syncDir(path)
}

// copyFileSync copies src to a new file dst and fsyncs it.
func copyFileSync(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// syncDir fsyncs the directory holding path, so renames and removals in it
// are durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync directory: %w", path, err)
	}
	return nil
}
