package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestOneThreadForRows: the rows pass, Rows and the exports run DuckDB on
// one thread (threads.go) — also side by side — and leave the setting as
// they found it; Run without Options.Rows (reconcile --json) does not touch it.
func TestOneThreadForRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledger, results := filepath.Join(dir, "l.csv"), filepath.Join(dir, "r.csv")
	os.WriteFile(ledger, []byte("merchant_transaction_id,amount,currency\nA,1.00,USD\nB,2.00,USD\nC,3.00,USD\n"), 0o644)
	os.WriteFile(results, []byte("merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\nB,2.50,USD,APPROVED\n"), 0o644)
	for _, rows := range []bool{false, true} {
		r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "256MB", Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		threads := func() int64 {
			var n int64
			if err := r.db.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if _, err := r.db.ExecContext(ctx, `SET threads = 3`); err != nil {
			t.Fatal(err)
		}
		loadRun(t, r, ledger, "", results, false)
		if r.ranges == nil && rows {
			t.Fatal("Run with Rows did not take the rows pass")
		}
		if got := threads(); got != 3 {
			t.Fatalf("Rows=%v: threads %d after Run, want 3 (as it was)", rows, got)
		}
		n := 0
		for _, err := range r.Rows(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if got := threads(); got != 1 {
				t.Fatalf("threads %d while Rows reads, want 1", got)
			}
			if n++; n == 1 { // an export beside the rows: still one thread after it
				if _, err := r.ExportParquet(ctx, filepath.Join(t.TempDir(), "pq")); err != nil {
					t.Fatal(err)
				}
				if got := threads(); got != 1 {
					t.Fatalf("threads %d after an export beside Rows, want 1 until Rows ends", got)
				}
			}
		}
		if n != 3 {
			t.Fatalf("%d rows, want 3", n)
		}
		if _, err := r.ExportCSV(ctx, filepath.Join(t.TempDir(), "csv"), nil); err != nil {
			t.Fatal(err)
		}
		if got := threads(); got != 3 {
			t.Fatalf("threads %d after Rows and the exports, want 3 (as it was)", got)
		}
		r.Close()
	}
}

// loadLeavesCore: DuckDB's default threads for the rows pass only when the
// load average leaves a core idle besides the pass's own.
func TestLoadLeavesCore(t *testing.T) {
	for _, c := range []struct {
		loadavg string
		cores   int
		want    bool
	}{
		{"0.10 0.20 0.30 1/200 1234\n", 2, true},
		{"1.49 1.00 1.00 2/200 1234\n", 2, true},
		{"1.50 1.00 1.00 2/200 1234\n", 2, false},
		{"5.12 7.97 5.22 9/300 999\n", 2, false},
		{"0.00 0.00 0.00 1/100 1\n", 1, false}, // one core: nothing to spare
		{"3.40 3.00 3.00 4/100 1\n", 4, true},
		{"", 2, false},
		{"busy 1 1", 2, false},
	} {
		if got := loadLeavesCore(c.loadavg, c.cores); got != c.want {
			t.Errorf("loadLeavesCore(%q, %d) = %v, want %v", c.loadavg, c.cores, got, c.want)
		}
	}
}

// statBusy reads the busy ticks of /proc/stat's first line: user, nice,
// system, irq, softirq and steal, not idle nor iowait (ticks of 10 ms).
func TestStatBusy(t *testing.T) {
	for _, c := range []struct {
		stat string
		want time.Duration
		ok   bool
	}{
		{"cpu  100 2 30 9000 50 4 5 6 0 0\ncpu0 50 1 15 4500 25 2 2 3 0 0\n", 147 * 10 * time.Millisecond, true},
		{"cpu  1 0 0 0 0 0 0 0\n", 10 * time.Millisecond, true},
		{"cpu  1 0 0 0 0 0 0\n", 0, false}, // no steal column
		{"cpu0 1 2 3 4 5 6 7 8 9 10\n", 0, false},
		{"cpu  1 x 3 4 5 6 7 8 9 10\n", 0, false},
		{"cpu  -1 0 0 0 0 0 0 0 0 0\n", 0, false},
		{"", 0, false},
	} {
		got, ok := statBusy(c.stat)
		if got != c.want || ok != c.ok {
			t.Errorf("statBusy(%q) = %v, %v; want %v, %v", c.stat, got, ok, c.want, c.ok)
		}
	}
}

// othersBusy: the machine's busy time less this process's own, in cores,
// over at least cpuWindow.
func TestOthersBusy(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms int, busy, self time.Duration) cpuSample {
		return cpuSample{at: t0.Add(time.Duration(ms) * time.Millisecond), busy: busy, self: self, ok: true}
	}
	s := time.Millisecond
	for _, c := range []struct {
		name  string
		a, b  cpuSample
		cores float64
		ok    bool
	}{
		{"idle but for this process on two cores", at(0, 1000*s, 50*s), at(200, 1400*s, 450*s), 0, true},
		{"another process on one core", at(0, 1000*s, 50*s), at(200, 1600*s, 450*s), 1, true},
		{"this process alone, ticks short of its rusage", at(0, 1000*s, 50*s), at(200, 1390*s, 450*s), 0, true},
		{"half a core besides", at(0, 0, 0), at(400, 600*s, 400*s), 0.5, true},
		{"too short", at(0, 0, 0), at(99, 100*s, 0), 0, false},
		{"no first sample", cpuSample{}, at(500, 100*s, 0), 0, false},
		{"no second sample", at(0, 0, 0), cpuSample{}, 0, false},
	} {
		got, ok := othersBusy(c.a, c.b)
		if ok != c.ok || ok && (got < c.cores-1e-9 || got > c.cores+1e-9) {
			t.Errorf("%s: othersBusy = %v, %v; want %v, %v", c.name, got, ok, c.cores, c.ok)
		}
	}
}

// sampleCPU's two clocks agree in their units: this process's spin shows
// in the machine's busy time (which counts every process), never beyond
// what the cores could give, and othersBusy leaves it out — whatever else
// the machine runs (the spin lasts until it has had 300 ms of CPU).
func TestSampleCPUOwnSpin(t *testing.T) {
	a := sampleCPU()
	if !a.ok {
		t.Skip("no /proc/stat here")
	}
	var b cpuSample
	for b = sampleCPU(); b.ok && b.self-a.self < 300*time.Millisecond; b = sampleCPU() {
		for i := 0; i < 1e6; i++ {
		}
	}
	if !b.ok {
		t.Fatal("sampleCPU failed the second time")
	}
	d := b.at.Sub(a.at)
	busy, self := b.busy-a.busy, b.self-a.self
	cores := runtime.NumCPU()
	tick := time.Duration(cores) * 20 * time.Millisecond // a tick either side per CPU
	if busy < self-tick {
		t.Errorf("machine busy %v in %v, less than this process's own %v", busy, d, self)
	}
	if busy > time.Duration(cores)*d+tick {
		t.Errorf("machine busy %v in %v: more than %d cores give", busy, d, cores)
	}
	others, ok := othersBusy(a, b)
	if !ok {
		t.Fatalf("othersBusy: no measure over %v", d)
	}
	if want := (busy - self).Seconds() / d.Seconds(); others > max(0, want)+1e-9 {
		t.Errorf("others %.2f cores, want %.2f (busy %v less own %v over %v)", others, want, busy, self, d)
	}
}
