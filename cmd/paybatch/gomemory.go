package main

import (
	"runtime/debug"

	"github.com/paybatch/paybatch/pipeline"
)

// boundGoMemory sets the Go runtime's soft memory limit to
// pipeline.GoMemoryLimit for a submit and returns the function that puts
// back the limit it replaced. Only the binary's own process uses it (main):
// the limit is the process's. A GOMEMLIMIT in the environment is the
// user's choice and stays.
func boundGoMemory(getenv func(string) string) (restore func()) {
	if getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(pipeline.GoMemoryLimit)
	return func() { debug.SetMemoryLimit(prev) }
}
