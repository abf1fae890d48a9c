package reconcile

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
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
	turns       // steps running on one thread
	full  int64 // the setting before the first of them
}

// turns counts the steps that hold one of the database's settings narrowed
// (threads: threadTurns; memory_limit: readTurns): the first to come
// narrows it, the last to go restores it.
type turns struct {
	mu sync.Mutex
	n  int
}

// take runs narrow when no step holds the setting, and the release it
// returns runs restore when the last step lets it go (once, however often
// it is called). An error from narrow is returned and nothing is held.
// Both run under the lock, so they may use the fields it guards.
func (t *turns) take(narrow func() error, restore func()) (release func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		if err := narrow(); err != nil {
			return nil, err
		}
	}
	t.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.n--; t.n == 0 {
				restore()
			}
		})
	}, nil
}

// oneThread narrows DuckDB to one thread until release is called.
func (r *Reconciler) oneThread(ctx context.Context) (release func(), err error) {
	t := &r.threads
	return t.take(func() error {
		if err := r.db.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&t.full); err != nil {
			return fmt.Errorf("reconcile: threads: %w", err)
		}
		if t.full > 1 {
			if _, err := r.db.ExecContext(ctx, `SET threads = 1`); err != nil {
				return fmt.Errorf("reconcile: threads: %w", err)
			}
		}
		return nil
	}, func() {
		if t.full > 1 {
			// Best effort: a failure leaves one thread, slower, never wrong.
			r.db.ExecContext(context.Background(), fmt.Sprintf(`SET threads = %d`, t.full))
		}
	})
}

// coresFree says whether the machine has a core to spare besides the one
// this step runs on. Run's rows pass takes DuckDB's default threads only
// then: on an idle machine the second thread shortens the pass (1M ids:
// 1.72–1.79 s on one thread, 1.16–1.19 s on two with the CSVs copied in
// file order first, rowsPass; BENCHMARKS.md #19 session 9), while on a
// busy one the thread that asked for the query polls DuckDB's executor for
// the worker that got no core (+0.5 cpu-s at load 5, the wall time no
// shorter; with one core held by another process the pass on one thread
// ends first).
//
// The measure is the CPU time the other processes took after the sample
// since (cpuSample: the machine's busy time less this process's own;
// Open takes it, so the measure spans the loads), over at least cpuWindow
// (it waits the rest), or over the last cpuWindow when since is older
// than cpuRecent: they must have kept less than the cores less
// one and a half busy (on two cores, half of one). The 1-minute load
// average, the measure before, counts a run that has just ended: reports
// run one after another on an idle machine took it past 1.5 and their
// passes to one thread (session 9). When /proc/stat cannot be read the
// load average decides, and when neither can be, the answer is no: one
// thread, never wrong.
func coresFree(ctx context.Context, since cpuSample) bool {
	cores := runtime.NumCPU()
	if since.ok && time.Since(since.at) > cpuRecent {
		since = sampleCPU() // long ago (a Reconciler kept open): measure now
	}
	if since.ok {
		if wait := cpuWindow - time.Since(since.at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
		if others, ok := othersBusy(since, sampleCPU()); ok {
			return others < float64(cores)-1.5
		}
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return false
	}
	return loadLeavesCore(string(b), cores)
}

const (
	// cpuWindow is the shortest time over which coresFree measures the
	// other processes' CPU: /proc/stat counts in ticks of 10 ms.
	cpuWindow = 100 * time.Millisecond
	// cpuRecent: a sample older than this says little of the machine now.
	cpuRecent = 5 * time.Second
)

// cpuSample is the machine's busy CPU time (/proc/stat: every CPU's user,
// nice, system, irq, softirq and steal ticks) and this process's own
// (getrusage) at a moment; ok is false when they could not be read.
type cpuSample struct {
	at         time.Time
	busy, self time.Duration
	ok         bool
}

// statBusy is the busy time in /proc/stat's first line ("cpu  user nice
// system idle iowait irq softirq steal …", in ticks of 1/100 s, USER_HZ).
func statBusy(stat string) (time.Duration, bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // not idle (4) nor iowait (5)
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, true
}

// othersBusy is how many cores the other processes kept busy on average
// between a and b: the machine's busy time less this process's own, over
// the time between. ok is false when a sample is missing or the time
// between is shorter than cpuWindow.
func othersBusy(a, b cpuSample) (cores float64, ok bool) {
	d := b.at.Sub(a.at)
	if !a.ok || !b.ok || d < cpuWindow {
		return 0, false
	}
	others := (b.busy - a.busy) - (b.self - a.self)
	// a CPU count, not money: a float is fine here
	return max(0, others.Seconds()/d.Seconds()), true
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
