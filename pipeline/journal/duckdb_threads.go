package journal

import (
	"context"
	"fmt"
	"sync"
)

// DuckDB's threads. While a worker thread runs a query's task, the thread
// that asked for the query busy-waits for the result (DuckDB's pending
// query loop polls the executor under its locks), so a query too small to
// be worth splitting costs up to twice its CPU when DuckDB has a second
// thread — and a journal's queries mostly are: the group writer's commits
// (a few a second at a paced rate), a page of a phase, the opening's
// migration check, a small batch's ingest, fold and checkpoint. Measured
// (#19): a 10-row `paybatch submit` took 470 ms of CPU with DuckDB's two
// threads and 327 ms with one; the commits at a paced rate cost less with
// one.
//
// So a journal runs DuckDB on one thread while it is small and while its
// group writer commits at a paced rate (SetLinger > 0), and on DuckDB's
// default (a thread per core) otherwise: once the journal holds
// smallJournalRows rows or an input fills an ingest chunk, its ingest,
// folds, checkpoints and reports get every core. (A 1M-row submit's final
// fold ran out of its 128 MB with one thread where two passed: the writer
// is stopped before any fold or checkpoint, so they run at the default.)
// The setting is the database's, not a connection's: every connection of
// the journal follows it; other DuckDB databases of the process do not.

// smallJournalRows: a journal with fewer rows runs DuckDB on one thread.
const smallJournalRows = 20_000

// threadPolicy is the state the journal's thread count follows.
type threadPolicy struct {
	mu    sync.Mutex
	full  int  // DuckDB's default for this database (cores)
	cur   int  // in force
	large bool // the journal (or an input being ingested) is large
	paced bool // the group writer commits at a paced rate
}

// initThreads reads DuckDB's default thread count and sets the count the
// journal's size calls for.
func (j *DuckDB) initThreads(ctx context.Context) error {
	var full int64
	if err := j.db.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&full); err != nil {
		return fmt.Errorf("journal: threads: %w", err)
	}
	var rows int64
	if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM journal`).Scan(&rows); err != nil {
		return fmt.Errorf("journal: threads: %w", err)
	}
	j.threads.mu.Lock()
	defer j.threads.mu.Unlock()
	j.threads.full, j.threads.cur = int(full), int(full)
	j.threads.large = rows >= smallJournalRows
	if j.threads.large {
		j.turnedLarge()
	} else if err := j.applyStorage(ctx); err != nil { // a large journal has DuckDB's default already
		return err
	}
	return j.applyThreads(ctx)
}

// growThreads is called when the journal turns out to be large (an input
// fills an ingest chunk): DuckDB gets its default threads from now on,
// except while the writer is paced.
func (j *DuckDB) growThreads(ctx context.Context) error {
	j.threads.mu.Lock()
	defer j.threads.mu.Unlock()
	if j.threads.large {
		return nil
	}
	j.threads.large = true
	j.turnedLarge()
	if err := j.applyStorage(ctx); err != nil {
		return err
	}
	return j.applyThreads(ctx)
}

// A small journal's strings are checkpointed without FSST compression.
// DuckDB weighs FSST for every string column of every checkpoint by
// building a symbol table from its values: about a third of a small
// journal's close, which every CLI run pays (BenchmarkPhases/3000: close
// 60–63 against 39–45 cpu-ms, #19 session 15), for a file ≈ 17 % smaller
// (3.16 against 3.68 MB at 3,000 rows). A large journal keeps DuckDB's
// default: there the smaller file is worth its CPU. The choice is per
// column segment, so a journal that grows mixes both, and either reads
// back the same. The setting is the database's, as threads are.
func storageSQL(large bool) string {
	if large {
		return `RESET disabled_compression_methods`
	}
	return `SET disabled_compression_methods = 'fsst'`
}

// applyStorage puts storageSQL in force for the journal's size (mu held).
func (j *DuckDB) applyStorage(ctx context.Context) error {
	if _, err := j.db.ExecContext(context.WithoutCancel(ctx), storageSQL(j.threads.large)); err != nil {
		return fmt.Errorf("journal: storage: %w", err)
	}
	return nil
}

// paceThreads records whether the group writer commits at a paced rate.
func (j *DuckDB) paceThreads(ctx context.Context, paced bool) error {
	j.threads.mu.Lock()
	defer j.threads.mu.Unlock()
	j.threads.paced = paced
	return j.applyThreads(ctx)
}

// applyThreads puts the policy's thread count in force (mu held).
func (j *DuckDB) applyThreads(ctx context.Context) error {
	p := &j.threads
	if p.full == 0 {
		return nil // not initialised (a journal being created)
	}
	want := p.full
	if p.paced || !p.large {
		want = 1
	}
	if want == p.cur {
		return nil
	}
	if _, err := j.db.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("SET threads = %d", want)); err != nil {
		return fmt.Errorf("journal: threads: %w", err)
	}
	p.cur = want
	return nil
}

// turnedLarge calls Options.Large, when set, the journal having turned out
// large.
func (j *DuckDB) turnedLarge() {
	if j.large != nil {
		j.large()
	}
}
