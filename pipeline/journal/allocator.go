package journal

import (
	"os"
	"time"
)

// DuckDB's allocator keeps the pages its queries free for a while before it
// gives them back to the system (on Linux it is jemalloc, with a decay of a
// second): a 1M-row submit churns through hash tables, appended chunks and
// checkpoints fast enough that 25–35 MB of its peak RSS were such pages
// (BENCHMARKS.md #19, 200k and 1M rows, at once vs DuckDB's decay).
// FreeAtOnce makes the allocator give freed pages back at once; it is the
// process's setting (every DuckDB database of the process shares the
// allocator), so the binary sets it around a submit, as it sets Go's memory
// limit, and puts the previous setting back.
//
// On platforms where DuckDB does not use jemalloc it does nothing.
func FreeAtOnce() (restore func(), err error) {
	return swapDecay(func(time.Duration) bool { return true }, 0)
}

// largeJournalBytes: a journal whose file and WAL hold as much when it is
// opened is large for Options.Large before it is even read (a 3,000-row
// journal's file is ≈ 3 MB).
const largeJournalBytes = 16 << 20

// largeOnDisk says whether the journal at path (file and WAL) holds
// largeJournalBytes.
func largeOnDisk(path string) bool {
	var n int64
	for _, p := range []string{path, walPath(path)} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n >= largeJournalBytes
}

// FreeLazily undoes FreeAtOnce for a while: the allocator keeps the pages
// it frees for at least d before giving them back, until restore. At a
// paced rate the process is idle between requests, and returning each
// commit's freed pages at once costs CPU a row (at 300/s: 0.46–0.49
// against 0.43–0.45 ms of CPU a row, 15 against 12.5 context switches,
// BENCHMARKS #19) while it holds little memory: the binary has it kept
// while a phase is paced. A decay already as long is left as it is.
func FreeLazily(d time.Duration) (restore func(), err error) {
	return swapDecay(func(prev time.Duration) bool { return prev != decayUnknown && prev < d }, d)
}

// swapDecay sets the allocator's decay to d when change(the current decay)
// says so, and returns what puts the current one back.
func swapDecay(change func(prev time.Duration) bool, d time.Duration) (restore func(), err error) {
	prev, err := allocatorDecay()
	if err != nil || !change(prev) {
		return func() {}, err
	}
	if err := setAllocatorDecay(d); err != nil {
		return func() {}, err
	}
	return func() { _ = setAllocatorDecay(prev) }, nil
}

// decayUnknown: no allocator to tune on this platform.
const decayUnknown = time.Duration(-1)
