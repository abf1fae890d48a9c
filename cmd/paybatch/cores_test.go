package main

import (
	"runtime"
	"testing"
)

// TestOneCore: GOMAXPROCS is 1 while any paced phase runs and back to what
// it was when the last ends, however the phases overlap; a done called twice
// counts once. DuckDB's allocator is made lazy (oneCore.lazy) over the same
// span.
func TestOneCore(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	if was < 2 {
		runtime.GOMAXPROCS(2)
		defer runtime.GOMAXPROCS(was)
	}
	before := runtime.GOMAXPROCS(0)
	lazy, restored := 0, 0
	c := oneCore{lazy: func() func() { lazy++; return func() { restored++ } }}
	a := c.paced()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("one paced phase: GOMAXPROCS %d", got)
	}
	b := c.paced()
	a()
	a()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("a phase still paced: GOMAXPROCS %d", got)
	}
	if lazy != 1 || restored != 0 {
		t.Fatalf("a phase still paced: allocator made lazy %d times, restored %d; want 1, 0", lazy, restored)
	}
	b()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("no phase paced: GOMAXPROCS %d, want %d", got, before)
	}
	if lazy != 1 || restored != 1 {
		t.Fatalf("no phase paced: allocator made lazy %d times, restored %d; want 1, 1", lazy, restored)
	}
	c.paced()()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("after another phase: GOMAXPROCS %d, want %d", got, before)
	}
	if lazy != 2 || restored != 2 {
		t.Fatalf("after another phase: allocator made lazy %d times, restored %d; want 2, 2", lazy, restored)
	}
}

// TestScheduledJobsInServeKeepEveryCore: a job that `serve --schedule` runs
// must not narrow the server's process to one core while it is paced (the
// server keeps rendering pages and validating uploads meanwhile), while the
// same job under `paybatch run` may.
func TestScheduledJobsInServeKeepEveryCore(t *testing.T) {
	e := &env{paced: (&oneCore{}).paced}
	if e.jobDeps().Paced == nil {
		t.Fatal("run's deps lost the paced hook")
	}
	if e.scheduledDeps().Paced != nil {
		t.Fatal("serve's scheduled jobs narrow the whole server to one core while paced")
	}
}
