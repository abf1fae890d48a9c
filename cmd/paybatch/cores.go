package main

import (
	"runtime"
	"sync"
)

// oneCore narrows Go to one core while at least one phase of the process's
// runs is paced at a limit (pipeline.Config.Paced), and gives back the
// cores it had when the last such phase ends. Only the binary's own process
// uses it (main): GOMAXPROCS is the process's, and at a paced rate the
// process is idle between requests, so with a second core each goroutine
// woken (a departure, an answer, a commit) wakes another thread that finds
// nothing to do. At 300/s with 50 ms latency that cost 0.49–0.55 against
// 0.54–0.73 ms of CPU per further row and 8–11 against 13–19 context
// switches (BenchmarkSubmitCPUAtLimit, #19). DuckDB's threads are not Go's,
// and reading and journaling the input run before the phase, on every core.
//
// For the same reason, lazy (when set) is called as the first paced phase
// starts and what it returns as the last ends: the binary has DuckDB's
// allocator keep the pages it frees meanwhile (duckAllocator.lazily).
type oneCore struct {
	lazy func() (restore func())

	mu      sync.Mutex
	phases  int    // paced phases running
	was     int    // GOMAXPROCS before the first
	restore func() // what lazy returned
}

// paced is pipeline.Config.Paced.
func (c *oneCore) paced() (done func()) {
	c.mu.Lock()
	if c.phases == 0 {
		c.was = runtime.GOMAXPROCS(1)
		if c.lazy != nil {
			c.restore = c.lazy()
		}
	}
	c.phases++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.phases--; c.phases == 0 {
				runtime.GOMAXPROCS(c.was)
				if c.restore != nil {
					c.restore()
					c.restore = nil
				}
			}
		})
	}
}
