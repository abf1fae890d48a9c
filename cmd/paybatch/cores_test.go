package main

import (
	"runtime"
	"testing"
)

// TestOneCore: GOMAXPROCS is 1 while any paced phase runs and back to what
// it was when the last ends, however the phases overlap; a done called twice
// counts once.
func TestOneCore(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	if was < 2 {
		runtime.GOMAXPROCS(2)
		defer runtime.GOMAXPROCS(was)
	}
	before := runtime.GOMAXPROCS(0)
	var c oneCore
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
	b()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("no phase paced: GOMAXPROCS %d, want %d", got, before)
	}
	c.paced()()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("after another phase: GOMAXPROCS %d, want %d", got, before)
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
