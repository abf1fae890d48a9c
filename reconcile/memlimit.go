package reconcile

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// duckdbShare is the part of Options.MemoryLimit given to DuckDB's
// memory_limit. DuckDB's limit covers its buffer manager, not every
// allocation (readers' buffers, the Go side): measured at 10M rows per side
// with memory_limit=1GB, the process peaked at 1.27 GB RSS, with 75% of 1GB
// at 1.02 GB, and with 65% still 0.3–1.4% over. Giving DuckDB 55% keeps the
// whole reconcile within the configured limit.
const duckdbShare = 0.55

// readShare is the part of Options.MemoryLimit DuckDB's memory_limit is
// narrowed to while the report's rows are read back from recon_sorted
// (readingMemory), never below minReadLimit nor above DuckDB's whole share.
//
// Reading a written table needs only the blocks in flight (a page of Rows,
// the Parquet COPY's row group), but DuckDB fills its whole limit with the
// blocks it loads, and at 10M ids the rows pass's table is spilled, so every
// block the readers load evicts another: on top of the live limit the
// allocator then holds the pages freed by those evictions (jemalloc keeps
// freed pages for a second; RSS counts them). Measured at 10M ids per side
// with --memory-limit 1GB (BENCHMARKS.md #19, session 10): the drain's RSS
// was DuckDB's 524 MiB live + 40–250 MB of freed pages + Go ≈ 70 MB + the
// binary's mapped text ≈ 62 MB, up to 944 MB; and when the rows pass's sort
// freed its ≈ 500 MB and the next scan refilled the limit in another arena
// within the second, 916–983 MB. Setting memory_limit also has DuckDB
// hand every freed page back at once (its BufferPool::SetLimit flushes the
// allocator): narrowed just after the pass's table is written, the sort's
// freed pages go before the scans refill the limit. With the reads held to
// 30 % the drain peaked at 528–638 MB, the whole report at 665–678 MB.
const readShare = 0.30

// minReadLimit: below this the readers' pages and row groups would spill
// or fail; small limits keep their whole share.
const minReadLimit = 128e6

// duckdbLimits are DuckDB's memory_limit from Options.MemoryLimit: full,
// as Open sets it, and read, while the report's rows are read.
func duckdbLimits(memoryLimit string) (full, read int64, err error) {
	limit, err := parseSize(memoryLimit)
	if err != nil {
		return 0, 0, err
	}
	full = int64(float64(limit)*duckdbShare) / 1e6 * 1e6
	read = min(full, max(minReadLimit, int64(float64(limit)*readShare)/1e6*1e6))
	return full, read, nil
}

// readTurns narrows DuckDB's memory_limit while any step reads the
// written rows back: the rows pass's scans after its table is written
// (rowsPass), Rows and ExportParquet, which may run side by side (the
// workbook beside the Parquet export); the limit returns to the full share
// when the last one ends. The setting is the database's, as threads is
// (threadTurns).
type readTurns struct {
	turns        // steps reading
	narrowed int // times the limit was narrowed (tests hold the rows pass to it)
}

// readingMemory narrows DuckDB's memory_limit to the read share until
// release is called. Best effort: when DuckDB cannot narrow it (more
// memory pinned than the read share), the step reads with the full limit,
// never wrong.
func (r *Reconciler) readingMemory(ctx context.Context) (release func()) {
	full, read, err := duckdbLimits(r.opts.MemoryLimit)
	if err != nil || read >= full {
		return func() {}
	}
	t := &r.reads
	release, _ = t.take(func() error {
		if _, err := r.db.ExecContext(ctx, fmt.Sprintf(`SET memory_limit = '%dMB'`, read/1e6)); err == nil {
			t.narrowed++
		}
		return nil // reading with the full limit is never wrong
	}, func() {
		r.db.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`SET memory_limit = '%dMB'`, full/1e6))
	})
	return release
}

// parseSize reads a size such as "512MB", "2GB", "1.5GiB" or "1000000"
// (bytes) into bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	// a size, not money: a float is fine here
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("reconcile: memory limit %q: want a size such as 512MB or 4GB", s)
	}
	b := int64(v * mult)
	if b < 64<<20 {
		return 0, fmt.Errorf("reconcile: memory limit %q is below 64MB", s)
	}
	return b, nil
}
