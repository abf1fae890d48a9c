package job

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

func TestJournalLockIsExclusive(t *testing.T) {
	j := filepath.Join(t.TempDir(), "out", "journal.duckdb")
	lk, err := lockJournal(j)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockJournal(j)
	if !errors.Is(err, paybatch.ErrLocked) || !strings.Contains(err.Error(), "another paybatch run") {
		t.Fatalf("second lock: err = %v, want ErrLocked naming the other run", err)
	}
	// One lock: the job's lock is the journal's; opening it without the
	// lock in hand is refused, with it accepted.
	if _, err := openJournal(context.Background(), j, nil); !errors.Is(err, paybatch.ErrLocked) {
		t.Fatalf("open while the job holds the lock: %v", err)
	}
	jr, err := openJournal(context.Background(), j, lk)
	if err != nil {
		t.Fatal(err)
	}
	if err := jr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := lockJournal(j); err == nil {
		t.Fatal("closing the journal released the job's lock")
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	lk2, err := lockJournal(j)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	lk2.Release()
	matches, _ := filepath.Glob(j + "*lock*")
	if len(matches) != 1 || matches[0] != j+".lock" {
		t.Errorf("lock files %v, want one: %s.lock", matches, j)
	}
}

func TestMetricsFileKeepsLastSuccessOnFailure(t *testing.T) {
	p := filepath.Join(t.TempDir(), "paybatch.prom")
	ok := time.Unix(1_790_000_000, 0)
	err := writeMetricsFile(p, runMetrics{
		RowsByState: map[string]int64{"final": 7, "declined": 1},
		MinorByCurr: map[string]int64{"USD": 12345, "JPY": 5000},
		RateLimited: 3, Retries: 4, Duration: 1500 * time.Millisecond, Success: true, LastSuccess: ok,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	for _, want := range []string{
		`paybatch_rows{state="final"} 7`, `paybatch_amount_minor_units{currency="USD"} 12345`,
		"paybatch_rate_limited_total 3", "paybatch_retries_total 4", "paybatch_run_duration_seconds 1.5",
		"paybatch_last_success_timestamp_seconds 1.79e+09", "# TYPE paybatch_rows gauge",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, b)
		}
	}
	if err := writeMetricsFile(p, runMetrics{Success: false}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p)
	if !strings.Contains(string(b), "paybatch_last_success_timestamp_seconds 1.79e+09") || !strings.Contains(string(b), "paybatch_last_run_success 0") {
		t.Fatalf("failed run lost the last success time:\n%s", b)
	}
}

// TestMetricsAmountNeverWraps: the submitted amount per currency is summed
// checked across a run's inputs; a sum past int64 drops that currency's
// gauge instead of writing a wrapped (negative) amount.
func TestMetricsAmountNeverWraps(t *testing.T) {
	m := runMetrics{RowsByState: map[string]int64{}, MinorByCurr: map[string]int64{}}
	m.addMinor("USD", math.MaxInt64-5)
	m.addMinor("USD", 10)
	m.addMinor("USD", 1) // stays dropped
	m.addMinor("GBP", 250)
	m.addMinor("GBP", 250)
	if !m.Overflowed["USD"] || m.Overflowed["GBP"] || m.MinorByCurr["GBP"] != 500 {
		t.Fatalf("metrics after overflow: %+v", m)
	}
	p := filepath.Join(t.TempDir(), "paybatch.prom")
	if err := writeMetricsFile(p, m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), `currency="USD"`) || !strings.Contains(string(b), `paybatch_amount_minor_units{currency="GBP"} 500`) {
		t.Fatalf("metrics file:\n%s", b)
	}
}
