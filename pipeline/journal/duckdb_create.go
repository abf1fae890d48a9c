package journal

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// A new journal is a copy of an empty one: migrations/empty.duckdb.gz is
// the journal every migration makes with the linked DuckDB, checkpointed
// (made, and remade by TestEmptyJournalTemplate -update, the way every new
// journal was made before: the migrations on a DuckDB instance of their
// own; the test fails while it is not what the migrations and this DuckDB
// make). That instance cost a new journal ≈ 50 ms of CPU beyond its one
// open — a fifth of a 10-row submit (BENCHMARKS.md #19, session 14);
// writing the ≈ 800 KB copy costs ≈ 2.5 ms.
//
// Two journals made by the migrations differ only in
// schema_version.applied_at, the statistics and checksums over it, and
// the database's name DuckDB records in the catalog (the file's name up to
// its first dot; DuckDB reads a file under any name, as after a rename).
// DuckDB's headers carry no identifier of the database (the main header
// holds the storage and library versions; the database headers the
// layout) and its WAL names none, so the copy is the journal the
// migrations would have made. Its applied_at are unstampedAt, which the
// open after the creation sets to its time (migrate).
//
//go:embed migrations/empty.duckdb.gz
var emptyJournal []byte

// unstampedAt is schema_version.applied_at in the empty journal, until
// the first open after its creation stamps it.
const unstampedAt = "TIMESTAMP '1970-01-01 00:00:00'"

// createDuckDB makes a new journal atomically when none is at path: the
// empty journal is written under a temporary name, fsynced, renamed into
// place, and the directory fsynced. A process killed while it writes
// leaves only the temporary file, which the next creation replaces; it
// never leaves a truncated journal. The caller holds the lock.
//
// A WAL without its journal (JOURNAL.wal beside no JOURNAL) is refused:
// DuckDB would replay it into the new journal — the changes last written
// to a journal that was moved or deleted, without the rows they change.
func createDuckDB(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // exists (or cannot be checked: opening it will say why)
	}
	for _, log := range []struct{ path, what, replayer string }{
		{walPath(path), "write-ahead log", "DuckDB"},
		{changeLogPath(path), "change log", "paybatch"},
	} {
		if _, err := os.Stat(log.path); err == nil {
			return &DamagedError{Path: path, Err: fmt.Errorf(
				"the file is missing but its %s %s is there, which %s would replay into a new journal; put the journal back beside it; if the journal was removed on purpose, move %s away too",
				log.what, log.path, log.replayer, log.path)}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal %s: %w", path, err)
		}
	}
	tmp := path + ".creating"
	// A WAL of the temporary name is left by a creation of older
	// binaries, which ran the migrations on it.
	for _, p := range []string{tmp, walPath(tmp)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal %s: %w", path, err)
		}
	}
	if err := writeEmpty(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("journal %s: creating: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	return syncDir(path)
}

// writeEmpty writes the empty journal to a new file at path and fsyncs it.
func writeEmpty(path string) (err error) {
	b, err := emptyJournalBytes()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666) // as DuckDB creates its files
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// emptyJournalBytes decompresses the empty journal.
func emptyJournalBytes() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(emptyJournal))
	if err != nil {
		return nil, fmt.Errorf("empty journal: %w", err)
	}
	var b bytes.Buffer
	b.Grow(1 << 20)
	if _, err := io.Copy(&b, zr); err != nil {
		return nil, fmt.Errorf("empty journal: %w", err)
	}
	return b.Bytes(), nil
}
