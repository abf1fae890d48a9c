package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/paybatch/paybatch/pipeline"
)

// TestBoundGoMemory: a submit runs under pipeline.GoMemoryLimit, with
// DuckDB's allocator freeing at once from the moment its journal turns out
// large (large, once however often it is called, never after the end), and
// gives back the limit and the allocator's setting it found; a GOMEMLIMIT in
// the environment is left alone (the allocator still frees at once when
// the journal is large).
func TestBoundGoMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	debug.SetMemoryLimit(math.MaxInt64)
	set, restored := 0, 0
	a := duckAllocator{atOnce: func() func() { set++; return func() { restored++ } }}
	check := func(step string, wantSet, wantRestored int) {
		t.Helper()
		if set != wantSet || restored != wantRestored {
			t.Fatalf("%s: allocator set %d times, restored %d; want %d, %d", step, set, restored, wantSet, wantRestored)
		}
	}
	large, restore := a.boundGoMemory(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != pipeline.GoMemoryLimit {
		t.Fatalf("during a submit: limit %d, want %d", got, pipeline.GoMemoryLimit)
	}
	check("a submit, its journal small", 0, 0)
	large()
	check("its journal turned large", 1, 0)
	large()
	check("large again", 1, 0)
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("after: limit %d, want the one before", got)
	}
	check("after", 1, 1)
	large()
	check("large after the end", 1, 1)

	_, restore = a.boundGoMemory(func(string) string { return "" })
	restore()
	check("a small submit's end", 1, 1)

	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}
	large, restore = a.boundGoMemory(env)
	large()
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: limit %d changed", got)
	}
	check("with GOMEMLIMIT set", 2, 2)
	large, restore = duckAllocator{}.boundGoMemory(func(string) string { return "" }) // nothing to set: no call
	large()
	restore()
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
