package main

import (
	"runtime/debug"

	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// boundGoMemory bounds the process's memory for a submit and returns the
// function that puts back what it replaced: the Go runtime's soft memory
// limit becomes pipeline.GoMemoryLimit, and DuckDB's allocator gives the
// pages it frees back to the system at once (journal.FreeAtOnce). Only the
// binary's own process uses it (main): both are the process's settings. A
// GOMEMLIMIT (or DUCKDB_JE_MALLOC_CONF) in the environment is the user's
// choice and stays.
func boundGoMemory(getenv func(string) string) (restore func()) {
	restoreAlloc := func() {}
	if getenv("DUCKDB_JE_MALLOC_CONF") == "" {
		// Not worth failing a submit for: without it the peak is higher.
		restoreAlloc, _ = journal.FreeAtOnce()
	}
	if getenv("GOMEMLIMIT") != "" {
		return restoreAlloc
	}
	prev := debug.SetMemoryLimit(pipeline.GoMemoryLimit)
	return func() { debug.SetMemoryLimit(prev); restoreAlloc() }
}
