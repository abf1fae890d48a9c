package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/paybatch/paybatch/pipeline"
)

// TestBoundGoMemory: a submit runs under pipeline.GoMemoryLimit and gives
// back the limit it found; a GOMEMLIMIT in the environment is left alone.
func TestBoundGoMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	debug.SetMemoryLimit(math.MaxInt64)
	restore := boundGoMemory(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != pipeline.GoMemoryLimit {
		t.Fatalf("during a submit: limit %d, want %d", got, pipeline.GoMemoryLimit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("after: limit %d, want the one before", got)
	}
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}
	boundGoMemory(env)()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: limit %d changed", got)
	}
}
