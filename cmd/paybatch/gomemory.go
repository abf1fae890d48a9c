package main

import (
	"runtime/debug"
	"sync"
	"time"

	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// duckAllocator is how the binary has DuckDB's allocator give back the
// pages its queries free (the process's setting, journal.FreeAtOnce): at
// once in a submit from the moment its journal or input turns out large
// (atOnce, for its peak memory; journal.Options.Large), but kept pacedDecay
// while a phase is paced (lazily, oneCore.lazy): returning each commit's
// freed pages at once costs CPU at a paced rate while it saves little —
// 0.46–0.49 against 0.43–0.45 ms of CPU a row at 300/s (#19). Both return
// what puts the previous setting back. Only the binary's own process uses
// it (main).
type duckAllocator struct {
	atOnce, lazily func() (restore func())
}

// pacedDecay is how long DuckDB's allocator keeps the pages it frees while
// a phase is paced: DuckDB's own default.
const pacedDecay = time.Second

// duckAllocatorOf is the binary's duckAllocator. A DUCKDB_JE_MALLOC_CONF in
// the environment is the user's choice and stays: neither is set then.
func duckAllocatorOf(getenv func(string) string) duckAllocator {
	if getenv("DUCKDB_JE_MALLOC_CONF") != "" {
		return duckAllocator{}
	}
	return duckAllocator{
		atOnce: func() func() {
			// Not worth failing a submit for: without it the peak is higher.
			restore, _ := journal.FreeAtOnce()
			return restore
		},
		lazily: func() func() {
			// Not worth failing a run for: without it a paced row costs more.
			restore, _ := journal.FreeLazily(pacedDecay)
			return restore
		},
	}
}

// boundGoMemory bounds the process's memory for a submit and returns the
// function that puts back what it replaced: the Go runtime's soft memory
// limit becomes pipeline.GoMemoryLimit; and large, the submit's
// job.Deps.JournalLarge, has DuckDB's allocator give the pages it frees
// back to the system at once (a.atOnce, when set) from the moment the
// submit's journal or input turns out large — a small run's memory is
// small either way, and freeing at once costs it CPU (journal.Options.Large).
// Both are the process's settings. A GOMEMLIMIT in the environment is the
// user's choice and stays.
func (a duckAllocator) boundGoMemory(getenv func(string) string) (large, restore func()) {
	var mu sync.Mutex
	undo, done := func() {}, false // done: set once, or ended
	large = func() {
		mu.Lock()
		defer mu.Unlock()
		if a.atOnce != nil && !done {
			undo, done = a.atOnce(), true
		}
	}
	restoreAlloc := func() {
		mu.Lock()
		defer mu.Unlock()
		undo()
		undo, done = func() {}, true
	}
	if getenv("GOMEMLIMIT") != "" {
		return large, restoreAlloc
	}
	prev := debug.SetMemoryLimit(pipeline.GoMemoryLimit)
	return large, func() { debug.SetMemoryLimit(prev); restoreAlloc() }
}
