package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DuckDB's layout: three 4 KiB headers, then 256 KiB blocks.
const duckHeaders, duckBlock = 3 * 4096, 256 * 1024

// rewrittenBlocks are the offsets of the blocks of old that cur rewrote in
// place.
func rewrittenBlocks(old, cur []byte) []int {
	var at []int
	for off := duckHeaders; off+duckBlock <= len(old) && off+duckBlock <= len(cur); off += duckBlock {
		if !bytes.Equal(old[off:off+duckBlock], cur[off:off+duckBlock]) {
			at = append(at, off)
		}
	}
	return at
}

// tornCheckpoint leaves the journal at path as a SIGKILL inside DuckDB's
// checkpoint leaves it — the cause of TestCrashResume's intermittent
// "Corrupt database file: computed checksum … in block at location 274432":
// the checkpoint rewrites a metadata block that the current header still
// references IN PLACE with one 256 KiB pwrite, and a fatal signal stops the
// kernel's copy between 4 KiB pages (generic_perform_write checks
// fatal_signal_pending), so the block is half new, half old under the old
// header. The checkpoint is really run (Close, with DuckDB's own
// debug_checkpoint_abort = 'after_free_list_write' stopping it once the
// metadata is written, before the new header, as a kill there would), then
// the blocks it rewrote in place are torn by hand: their first 16 of 64
// pages new, the rest as before. (Of a new journal's, the metadata block
// at 274432 is the one the old header references; the block at 12288 was
// free in it since the journal's first checkpoint, and tearing it alone
// is harmless.) It returns the file as it was before the checkpoint and
// the offsets of the torn blocks.
func tornCheckpoint(t *testing.T, path string, write func(j *DuckDB)) (before []byte, at []int) {
	t.Helper()
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = OpenDuckDB(ctx, path, Options{beforeCheckpoint: func() {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		}
		before = b
		if _, err := j.SQL().ExecContext(ctx, `SET debug_checkpoint_abort = 'after_free_list_write'`); err != nil {
			t.Error(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	write(j)
	if err := j.Close(); err == nil {
		t.Fatal("the checkpoint was not cut short (debug_checkpoint_abort)")
	}
	if before == nil {
		t.Fatal("Close did not checkpoint")
	}
	if _, err := os.Stat(checkpointCopy(path)); err != nil {
		t.Fatalf("a checkpoint cut short left no protected copy: %v", err)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at = rewrittenBlocks(before, cur)
	if len(at) == 0 {
		t.Fatal("the checkpoint rewrote no block of the previous file in place: the torn-write hazard may be gone (update this test and the package doc)")
	}
	torn := append([]byte(nil), cur...)
	for _, off := range at {
		copy(torn[off+duckBlock/4:off+duckBlock], before[off+duckBlock/4:off+duckBlock])
	}
	if err := os.WriteFile(path, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	return before, at
}

// copyDir copies the regular files of dir into a new directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestTornCheckpointResumes is the reproduction of TestCrashResume's
// "journal … is damaged: … computed checksum … in block at location
// 274432": a journal whose checkpoint was torn by a kill opens, with every
// row written before it, once and only once. Before the protected
// checkpoint (duckdb_checkpoint.go) this opened as ErrDamaged (the
// "without the copy" case below, which is what the old code left behind).
func TestTornCheckpointResumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "j.duckdb")
	at := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	_, off := tornCheckpoint(t, path, func(j *DuckDB) {
		if _, err := j.SQL().ExecContext(ctx, `CREATE TABLE torn_probe AS SELECT range AS a FROM range(100000)`); err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if err := j.RecordInput(ctx, Input{Path: "in.csv", SHA256: string(rune('a' + i%26)), Rows: i}, at); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("checkpoint torn in the blocks at %v", off)

	t.Run("without the copy (the old code) it is damage", func(t *testing.T) {
		d := copyDir(t, dir)
		p := filepath.Join(d, "j.duckdb")
		for _, f := range []string{checkpointCopy(p), walPath(checkpointCopy(p))} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		j, err := OpenDuckDB(ctx, p, Options{})
		if err == nil {
			j.Close()
			t.Fatal("a journal whose checkpoint was torn opened without its copy: the tear is not a tear")
		}
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("torn without the copy: %v, want ErrDamaged", err)
		}
	})

	// The protected copy is restored: every row, once.
	for round := range 2 { // the second open reads the checkpoint the first Close made
		j, err := OpenDuckDB(ctx, path, Options{})
		if err != nil {
			t.Fatalf("open %d after a torn checkpoint: %v", round, err)
		}
		var n, sum, inputs int
		if err := j.SQL().QueryRowContext(ctx, `SELECT count(*), sum(a) FROM torn_probe`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if err := j.SQL().QueryRowContext(ctx, `SELECT count(*) FROM inputs`).Scan(&inputs); err != nil {
			t.Fatal(err)
		}
		if n != 100000 || sum != 100000*99999/2 || inputs != 26 {
			t.Fatalf("open %d: torn_probe %d rows (sum %d), inputs %d; want 100000 (sum %d), 26", round, n, sum, inputs, 100000*99999/2)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{checkpointCopy(path), walPath(checkpointCopy(path))} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s left after a completed checkpoint (%v)", f, err)
			}
		}
	}
}

// TestWALReplaysOnPreCheckpointFile pins down the DuckDB semantics the
// protected checkpoint relies on: until a checkpoint writes the new header,
// the WAL is only appended to (a checkpoint marker pointing at the new
// metadata, which does not match the old header), so the file as it was
// before the checkpoint plus the WAL left by a checkpoint cut short replay
// to the same data. (Close restores the WAL's own copy too, so it does not
// depend on this; this test says what the copy of the file alone would
// give.)
func TestWALReplaysOnPreCheckpointFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "j.duckdb")
	before, _ := tornCheckpoint(t, path, func(j *DuckDB) {
		if _, err := j.SQL().ExecContext(ctx, `CREATE TABLE torn_probe AS SELECT range AS a FROM range(100000)`); err != nil {
			t.Fatal(err)
		}
	})
	walLeft, err := os.ReadFile(walPath(path))
	if err != nil {
		t.Fatal(err)
	}
	walCopy, err := os.ReadFile(walPath(checkpointCopy(path)))
	if err != nil {
		t.Fatal(err)
	}
	if len(walLeft) < len(walCopy) || !bytes.Equal(walLeft[:len(walCopy)], walCopy) {
		t.Fatalf("the checkpoint changed the WAL's existing bytes (%d → %d bytes): not append-only", len(walCopy), len(walLeft))
	}
	t.Logf("WAL %d bytes before the checkpoint, %d after it was cut short", len(walCopy), len(walLeft))
	// The pre-checkpoint file, the WAL as the checkpoint left it, no copy.
	for _, f := range []string{checkpointCopy(path), walPath(checkpointCopy(path))} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, before, 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var n int
	if err := j.SQL().QueryRowContext(ctx, `SELECT count(*) FROM torn_probe`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 100000 {
		t.Fatalf("%d rows after replaying the WAL on the pre-checkpoint file, want 100000", n)
	}
}

// TestNoCheckpointDuringRun: between Open and Close DuckDB never writes a
// block the file's header references (no automatic checkpoint, none at
// shutdown): its headers are unchanged, the only blocks of the file as
// opened it rewrote were free in it (DuckDB writes a large insert's row
// groups to free or new blocks, the WAL pointing at them), the file alone
// still reads as it was opened, and the WAL carries the run. A journal
// has free blocks from its first checkpoint on — a new one's first Close
// checkpoints its schema_version stamp (duckdb_create.go).
func TestNoCheckpointDuringRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	opened, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "opened.duckdb"), opened, 0o644); err != nil {
		t.Fatal(err)
	}
	want := describeJournal(t, filepath.Join(dir, "opened.duckdb"))
	called := false
	var free int
	j, err = OpenDuckDB(ctx, path, Options{beforeCheckpoint: func() {
		called = true
		cur, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(cur) < len(opened) || !bytes.Equal(cur[:duckHeaders], opened[:duckHeaders]) {
			t.Fatalf("the file's headers changed before Close's checkpoint")
		}
		var rewritten []int
		for off := duckHeaders; off+duckBlock <= len(opened); off += duckBlock {
			if !bytes.Equal(opened[off:off+duckBlock], cur[off:off+duckBlock]) {
				rewritten = append(rewritten, (off-duckHeaders)/duckBlock)
			}
		}
		if len(rewritten) > free {
			t.Errorf("blocks %v of the file as opened rewritten before Close's checkpoint; %d were free", rewritten, free)
		}
		t.Logf("blocks %v (of %d free) of the file as opened written during the run", rewritten, free)
		if err := os.WriteFile(filepath.Join(dir, "cur.duckdb"), cur, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := describeJournal(t, filepath.Join(dir, "cur.duckdb")); got != want {
			t.Errorf("the file alone no longer reads as opened:\n%s", lineDiff(want, got))
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SQL().QueryRowContext(ctx, `SELECT free_blocks FROM pragma_database_size()`).Scan(&free); err != nil {
		t.Fatal(err)
	}
	// More than DuckDB's default checkpoint_threshold (16 MiB of WAL).
	for range 4 {
		if _, err := j.SQL().ExecContext(ctx, `CREATE OR REPLACE TABLE big AS SELECT range AS a, repeat('x', 100) AS b FROM range(300000)`); err != nil {
			t.Fatal(err)
		}
		if _, err := j.SQL().ExecContext(ctx, `UPDATE big SET b = repeat('y', 100)`); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if !called {
		t.Fatal("Close did not checkpoint")
	}
}
