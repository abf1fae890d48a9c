package reconcile

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// DuckDB's threads while the report rows are written and read. The steps
// that write and read them — Run's rows pass (sql/rows_pass.sql: the join,
// the sort, the table), the pages Rows reads, the CSV COPYs — gain little
// from a second thread on this 2-core machine and pay for it: while a
// worker runs a task, the thread that asked for the query waits for it by
// polling DuckDB's executor under its locks (the journal saw the same,
// pipeline/journal/duckdb_threads.go). Measured in process on 1M ids (#19,
// BENCHMARKS.md "Full report"): the rows pass 4.0–4.4 cpu-s with one thread
// against 4.0–7.9 with two, and the wall time no longer with one under
// load. So those steps run with one thread (the rows pass only while the
// machine has no idle core: coresFree, below); the setting is the database's,
// so it stays narrowed while any of them runs (they may run side by side:
// Rows beside an export) and returns to what it was when the last one ends.
// Run's summary alone (reconcile --json) and the exact path keep DuckDB's
// default. The Parquet export runs on one thread too, so that it can run
// beside the workbook's drain (cmd/paybatch/job) on the other core (session
// 6 withdrew this when a 10M run went beyond a 1 GB --memory-limit; session
// 7 measured 753 MB peak for it at 10M: BENCHMARKS.md, #19).
type threadTurns struct {
	mu   sync.Mutex
	n    int   // steps running on one thread
	full int64 // the setting before the first of them
}

// oneThread narrows DuckDB to one thread until release is called.
func (r *Reconciler) oneThread(ctx context.Context) (release func(), err error) {
	t := &r.threads
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		if err := r.db.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&t.full); err != nil {
			return nil, fmt.Errorf("reconcile: threads: %w", err)
		}
		if t.full > 1 {
			if _, err := r.db.ExecContext(ctx, `SET threads = 1`); err != nil {
				return nil, fmt.Errorf("reconcile: threads: %w", err)
			}
		}
	}
	t.n++
	once := sync.Once{}
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.n--; t.n == 0 && t.full > 1 {
				// Best effort: a failure leaves one thread, slower, never wrong.
				r.db.ExecContext(context.Background(), fmt.Sprintf(`SET threads = %d`, t.full))
			}
		})
	}, nil
}

// coresFree says whether the machine has a core to spare besides the one
// this step runs on: the 1-minute load average (/proc/loadavg) is below the
// cores less half of one. Run's rows pass takes DuckDB's default threads
// only then: on an idle machine the second thread shortens the pass (1M
// ids: 1.72–1.79 s on one thread, 1.16–1.19 s on two with the CSVs copied
// in file order first, rowsPass; BENCHMARKS.md #19 session 9), while on a
// busy one the thread that asked for the query polls DuckDB's executor for
// the worker that got no core (+0.5 cpu-s at load 5, the wall time no
// shorter; with one core held by another process the pass on one thread
// ends first). When the load cannot be read, the answer is no: one thread,
// never wrong.
func coresFree() bool {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return false
	}
	return loadLeavesCore(string(b), runtime.NumCPU())
}

// loadLeavesCore is coresFree on the text of /proc/loadavg.
func loadLeavesCore(loadavg string, cores int) bool {
	f := strings.Fields(loadavg)
	if len(f) == 0 || cores < 2 {
		return false
	}
	// a load average, not money: a float is fine here
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return false
	}
	return load < float64(cores)-0.5
}
