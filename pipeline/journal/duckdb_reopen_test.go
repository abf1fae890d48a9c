package journal

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestReopenKeepsHandleAndLock: a reopen closes the DuckDB database and
// opens it again behind the same *sql.DB (SQL()'s users keep theirs, the
// settings are the journal's again), and the journal's lock stays held the
// whole time: another taker is refused while the file is closed.
func TestReopenKeepsHandleAndLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	var tried atomic.Int32
	j, err := OpenDuckDB(ctx, path, Options{whileReopening: func() {
		tried.Add(1)
		if lk, err := TakeLock(path); !errors.Is(err, ErrLocked) {
			if lk != nil {
				lk.Release()
			}
			t.Errorf("while the database is closed, TakeLock: %v, want ErrLocked", err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	ingestRefunds(ctx, t, j, 100, "re", at)
	db := j.SQL()
	if _, err := db.ExecContext(ctx, "SET threads = 1"); err != nil {
		t.Fatal(err)
	}
	j.threads.mu.Lock()
	j.threads.cur = 1
	j.threads.mu.Unlock()
	if err := j.reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if tried.Load() != 1 {
		t.Fatalf("the database was closed %d times, want 1", tried.Load())
	}
	if j.SQL() != db {
		t.Fatal("SQL() changed across a reopen")
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM journal`).Scan(&n); err != nil || n != 100 {
		t.Fatalf("after a reopen: %d rows (%v), want 100", n, err)
	}
	var threads int64
	var limit, threshold string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('threads'), current_setting('memory_limit'), current_setting('checkpoint_threshold')`).Scan(&threads, &limit, &threshold); err != nil {
		t.Fatal(err)
	}
	if threads != 1 {
		t.Errorf("threads after a reopen: %d, want the journal's 1", threads)
	}
	// The DSN's settings (DuckDB prints 96MB as 91.5 MiB, 1000TB as 909.4 TiB).
	if limit != "91.5 MiB" || !strings.HasSuffix(threshold, "TiB") {
		t.Errorf("after a reopen: memory_limit %s, checkpoint_threshold %s; want the journal's (%s, %s)", limit, threshold, MemoryLimit, noAutoCheckpoint)
	}
	if _, err := TakeLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("after a reopen, TakeLock: %v, want ErrLocked", err)
	}
}

// TestReaderRefusedWhileReopening: a reader in another process — reconcile,
// `journal export`, which call Upgrade and then ATTACH the file read-only —
// is refused (ErrLocked) while a holder's database is closed for a reopen,
// as it is while the database is open: the journal's lock, held throughout,
// refuses it, where DuckDB's own lock on the file does not then. Readers
// share the lock with each other; a holder cannot take it from a reader;
// and a journal without a lock file gets none from a reader.
func TestReaderRefusedWhileReopening(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	var during error
	j, err := OpenDuckDB(ctx, path, Options{whileReopening: func() { during = Upgrade(ctx, path) }})
	if err != nil {
		t.Fatal(err)
	}
	ingestRefunds(ctx, t, j, 10, "rd", time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	if err := Upgrade(ctx, path); !errors.Is(err, ErrLocked) {
		t.Fatalf("while the journal is open: Upgrade: %v, want ErrLocked", err)
	}
	if err := j.reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, ErrLocked) {
		t.Fatalf("while the holder's database is closed for a reopen: Upgrade: %v, want ErrLocked", during)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	release, err := readLock(path) // a reader
	if err != nil {
		t.Fatal(err)
	}
	if err := Upgrade(ctx, path); err != nil {
		t.Fatalf("beside another reader: Upgrade: %v", err)
	}
	if lk, err := TakeLock(path); !errors.Is(err, ErrLocked) {
		if lk != nil {
			lk.Release()
		}
		t.Fatalf("a holder while a reader reads: TakeLock: %v, want ErrLocked", err)
	}
	release()
	if err := Upgrade(ctx, path); err != nil {
		t.Fatalf("no holder, no reader: Upgrade: %v", err)
	}

	if err := os.Remove(LockPath(path)); err != nil {
		t.Fatal(err)
	}
	if err := Upgrade(ctx, path); err != nil {
		t.Fatalf("no lock file: Upgrade: %v", err)
	}
	if _, err := os.Stat(LockPath(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a reader created the lock file: %v", err)
	}
}

// TestReopenGivesWayToConnectionInUse: a connection held past the drain
// time (a transaction open elsewhere) makes the reopen give up, changing
// nothing: the transaction carries on on the same database and commits.
func TestReopenGivesWayToConnectionInUse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	closed := false
	j, err := OpenDuckDB(ctx, path, Options{whileReopening: func() { closed = true }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.re.drain = 50 * time.Millisecond
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	ingestRefunds(ctx, t, j, 10, "busy", at)
	tx, err := j.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE journal SET problem = 'x' WHERE merchant_transaction_id = 'RF-0000001'`); err != nil {
		t.Fatal(err)
	}
	if err := j.reopen(ctx); err != nil {
		t.Fatalf("a reopen that gives way is not an error: %v", err)
	}
	if closed {
		t.Fatal("the database was closed under an open transaction")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The pool works as before, and a later reopen goes through.
	if err := j.reopen(ctx); err != nil || !closed {
		t.Fatalf("reopen with nothing in use: closed %v, %v", closed, err)
	}
	var p string
	if err := j.SQL().QueryRowContext(ctx, `SELECT problem FROM journal WHERE merchant_transaction_id = 'RF-0000001'`).Scan(&p); err != nil || p != "x" {
		t.Fatalf("the committed change after the reopens: %q (%v)", p, err)
	}
}

// TestReopenUnderConcurrentReads: readers on other goroutines (the page
// reader, the progress publisher, the web server's pages) keep working
// through reopens: a query asked for meanwhile waits and runs on the
// database opened again.
func TestReopenUnderConcurrentReads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	ingestRefunds(ctx, t, j, 500, "conc", at)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := j.CountRows(ctx, Query{States: []paybatch.State{paybatch.StatePending}})
				if err != nil || n != 500 {
					t.Errorf("a read beside reopens: %d (%v), want 500", n, err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for range 10 {
		if err := j.reopen(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("no read ran")
	}
}

// TestFreeAtOnce: the allocator's decay is 0 while set and what it was
// after (Linux, where DuckDB runs on jemalloc; elsewhere nothing changes).
func TestFreeAtOnce(t *testing.T) {
	before, err := allocatorDecay()
	if err != nil {
		t.Fatal(err)
	}
	restore, err := FreeAtOnce()
	if err != nil {
		t.Fatal(err)
	}
	during, _ := allocatorDecay()
	restore()
	after, _ := allocatorDecay()
	if before == decayUnknown {
		t.Skip("DuckDB does not run on jemalloc here")
	}
	if during != 0 || after != before {
		t.Fatalf("decay before %v, during %v, after %v; want 0 during and the same after", before, during, after)
	}
}
