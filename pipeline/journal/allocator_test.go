package journal

import (
	"testing"
	"time"
)

// TestFreeLazily: inside FreeAtOnce, FreeLazily keeps freed pages for its
// decay until restored, then the decay is 0 again; a decay already as long
// is left alone (Linux, where DuckDB runs on jemalloc).
func TestFreeLazily(t *testing.T) {
	before, err := allocatorDecay()
	if err != nil {
		t.Fatal(err)
	}
	if before == decayUnknown {
		t.Skip("DuckDB does not run on jemalloc here")
	}
	atOnce, err := FreeAtOnce()
	if err != nil {
		t.Fatal(err)
	}
	defer atOnce()
	lazily, err := FreeLazily(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	during, _ := allocatorDecay()
	lazily()
	after, _ := allocatorDecay()
	if during != time.Second || after != 0 {
		t.Fatalf("decay while lazy %v, after %v; want 1s, then 0 again", during, after)
	}
	atOnce()
	restore, err := FreeLazily(time.Millisecond) // shorter than what is set: nothing to do
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := allocatorDecay(); got != before {
		t.Fatalf("decay %v after FreeLazily(1ms) on %v; want it left alone", got, before)
	}
	restore()
}
