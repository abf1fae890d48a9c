package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/paybatch/paybatch/pipeline"
)

// TestBoundGoMemory: a submit runs under pipeline.GoMemoryLimit, with
// DuckDB's allocator freeing at once, and gives back the limit and the
// allocator's setting it found; a GOMEMLIMIT in the environment is left
// alone (the allocator still frees at once).
func TestBoundGoMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	debug.SetMemoryLimit(math.MaxInt64)
	set, restored := 0, 0
	a := duckAllocator{atOnce: func() func() { set++; return func() { restored++ } }}
	restore := a.boundGoMemory(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != pipeline.GoMemoryLimit {
		t.Fatalf("during a submit: limit %d, want %d", got, pipeline.GoMemoryLimit)
	}
	if set != 1 || restored != 0 {
		t.Fatalf("during a submit: allocator set %d times, restored %d; want 1, 0", set, restored)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("after: limit %d, want the one before", got)
	}
	if set != 1 || restored != 1 {
		t.Fatalf("after: allocator set %d times, restored %d; want 1, 1", set, restored)
	}
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}
	a.boundGoMemory(env)()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: limit %d changed", got)
	}
	if set != 2 || restored != 2 {
		t.Fatalf("with GOMEMLIMIT set: allocator set %d times, restored %d; want 2, 2", set, restored)
	}
	duckAllocator{}.boundGoMemory(func(string) string { return "" })() // nothing to set: no call
}

// TestDuckAllocatorLeavesTheUsersSetting: a DUCKDB_JE_MALLOC_CONF in the
// environment is the user's choice: neither a submit nor a paced phase
// changes the allocator's decay then; without it both do.
func TestDuckAllocatorLeavesTheUsersSetting(t *testing.T) {
	user := duckAllocatorOf(func(k string) string {
		if k == "DUCKDB_JE_MALLOC_CONF" {
			return "dirty_decay_ms:0"
		}
		return ""
	})
	if user.atOnce != nil || user.lazily != nil {
		t.Error("a submit or a paced phase would override the user's DUCKDB_JE_MALLOC_CONF")
	}
	ours := duckAllocatorOf(func(string) string { return "" })
	if ours.atOnce == nil || ours.lazily == nil {
		t.Error("without DUCKDB_JE_MALLOC_CONF, a submit would not free at once or a paced phase not lazily")
	}
}
